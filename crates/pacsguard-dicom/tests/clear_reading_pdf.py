# Writes PDFs (for pdf.rs) encrypted with the Standard security handler (V4 R4, crypt filter
# StdCF of method V2: RC4, 128 bits, an empty user password) that readers nevertheless read
# partly or wholly unencrypted:
#  - metadata_xfa.pdf: /EncryptMetadata false, and the XFA form is a stream typed /Metadata
#    written in clear: qpdf leaves every stream typed /Metadata undecrypted then (mutool
#    decrypts it), so qpdf sees the form's script.
#  - update_in_clear.pdf: an encrypted document, then an incremental update whose trailer
#    names no /Encrypt, adding in clear a catalog that attaches a program: qpdf and mutool
#    read the document from its newest trailer, unencrypted, and extract the program.
#  - reencrypted_update.pdf: an encrypted document whose trailer is a cross-reference
#    stream, then an update with a classic trailer naming another /Encrypt and /ID, which
#    attaches a program encrypted with the new key: qpdf and mutool decrypt with the newest
#    trailer's, and extract it.
# RC4 and MD5 only, so the standard library writes them. Arguments: the output directory
# and a program to attach (/bin/true).
import hashlib, os, struct, sys, zlib

PAD = bytes.fromhex('28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A')
ID = b'\x42' * 16
P = -3904


def rc4(key, data):
    s = list(range(256)); j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256; s[i], s[j] = s[j], s[i]
    i = j = 0; out = bytearray()
    for b in data:
        i = (i + 1) % 256; j = (j + s[i]) % 256; s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypt_dict(metadata, file_id=ID):
    """Algorithms 3, 2 and 5 for owner password 'owner' and the empty user password; and
    the file key."""
    h = hashlib.md5((b'owner' + PAD)[:32]).digest()
    for _ in range(50): h = hashlib.md5(h[:16]).digest()
    o = rc4(h[:16], PAD)
    for i in range(1, 20): o = rc4(bytes(b ^ i for b in h[:16]), o)
    k = hashlib.md5(PAD + o + struct.pack('<i', P) + file_id + (b'' if metadata else b'\xff' * 4)).digest()
    for _ in range(50): k = hashlib.md5(k[:16]).digest()
    u = rc4(k[:16], hashlib.md5(PAD + file_id).digest())
    for i in range(1, 20): u = rc4(bytes(b ^ i for b in k[:16]), u)
    return (b'<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /V2 /AuthEvent '
            b'/DocOpen /Length 16 >> >> /StmF /StdCF /StrF /StdCF /O <%s> /U <%s> /P %d %s>>'
            % (o.hex().encode(), (u + b'\0' * 16).hex().encode(), P,
               b'' if metadata else b'/EncryptMetadata false ')), k[:16]


def encrypt(key, num, data):
    """Algorithm 1: RC4 with the file key extended by the object number, generation 0."""
    return rc4(hashlib.md5(key + struct.pack('<I', num)[:3] + b'\0\0').digest()[:16], data)


def section(objects, base):
    """The objects from offset `base` on, and a cross-reference table of one row each."""
    out = bytearray(); rows = b'xref\n0 1\n0000000000 65535 f \n'
    for num, text in objects:
        rows += b'%d 1\n%010d 00000 n \n' % (num, base + len(out))
        out += b'%d 0 obj\n%s\nendobj\n' % (num, text)
    return bytes(out), rows


def stream(entries, data):
    return b'<< %s /Length %d >>\nstream\n' % (entries, len(data)) + data + b'\nendstream'


def document(objects, trailer, start=b'%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', prev=None):
    out, rows = section(objects, len(start))
    xref = len(start) + len(out)
    ids = b'/ID [<%s> <%s>]' % (ID.hex().encode(), ID.hex().encode())
    prev = b'' if prev is None else b'/Prev %d ' % prev
    return (start + out + rows + b'trailer\n<< /Size 10 /Root 1 0 R %s%s %s>>\nstartxref\n%d\n%%%%EOF\n'
            % (prev, ids, trailer, xref)), xref


PAGES = [(2, b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>'),
         (3, b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>')]
XFA = (b'<?xml version="1.0"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template><subform>'
       b'<field name="a"><event activity="initialize"><script contentType="application/x-javascript">'
       b"xfa.host.messageBox('clear metadata')</script></event></field></subform></template></xdp:xdp>")

metadata_xfa, _ = document(
    [(1, b'<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 4 0 R >> >>'), *PAGES,
     (4, stream(b'/Type /Metadata /Subtype /XML /Filter /FlateDecode', zlib.compress(XFA))),
     (9, encrypt_dict(metadata=False)[0])],
    b'/Encrypt 9 0 R ')

original, xref = document([(1, b'<< /Type /Catalog /Pages 2 0 R >>'), *PAGES,
                           (9, encrypt_dict(metadata=True)[0])], b'/Encrypt 9 0 R ')
program = open(sys.argv[2], 'rb').read()
update, _ = document(
    [(1, b'<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(notes.txt) 4 0 R] >> >> >>'),
     (4, b'<< /Type /Filespec /F (notes.txt) /EF << /F 5 0 R >> >>'),
     (5, stream(b'/Type /EmbeddedFile /Filter /FlateDecode', zlib.compress(program)))],
    b'', start=original, prev=xref)

# The cross-reference stream's document: objects 1 to 3 and the encryption dictionary 9.
start = b'%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'
body, _ = section([(1, b'<< /Type /Catalog /Pages 2 0 R >>'), *PAGES,
                   (9, encrypt_dict(metadata=True)[0])], len(start))
where = {}
for num, at in zip((1, 2, 3, 9), [m.start() for m in __import__('re').finditer(rb'\d+ 0 obj', body)]):
    where[num] = len(start) + at
where[10] = len(start) + len(body)
rows = b''.join(struct.pack('>BIH', 1, where[n], 0) if n in where else struct.pack('>BIH', 0, 0, 65535)
                for n in range(11))
xref_stream = (b'10 0 obj\n<< /Type /XRef /Size 11 /W [1 4 2] /Root 1 0 R /Encrypt 9 0 R /ID [<%s> <%s>] '
               b'/Length %d >>\nstream\n' % (ID.hex().encode(), ID.hex().encode(), len(rows))
               + rows + b'\nendstream\nendobj\n')
streamed = start + body + xref_stream + b'startxref\n%d\n%%%%EOF\n' % where[10]
NEW_ID = b'\x77' * 16
new_encrypt, new_key = encrypt_dict(metadata=True, file_id=NEW_ID)
attached = encrypt(new_key, 5, zlib.compress(program))
objects, rows = section(
    [(1, b'<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [<%s> 4 0 R] >> >> >>'
      % encrypt(new_key, 1, b'notes.txt').hex().encode()),
     (4, b'<< /Type /Filespec /F <%s> /EF << /F 5 0 R >> >>' % encrypt(new_key, 4, b'notes.txt').hex().encode()),
     (5, stream(b'/Type /EmbeddedFile /Filter /FlateDecode', attached)),
     (11, new_encrypt)], len(streamed))
reencrypted = (streamed + objects + rows
               + b'trailer\n<< /Size 12 /Root 1 0 R /Prev %d /Encrypt 11 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n'
               % (where[10], NEW_ID.hex().encode(), NEW_ID.hex().encode(), len(streamed) + len(objects)))

for name, pdf in [('metadata_xfa.pdf', metadata_xfa), ('update_in_clear.pdf', update),
                  ('reencrypted_update.pdf', reencrypted)]:
    with open(os.path.join(sys.argv[1], name), 'wb') as f:
        f.write(pdf)
