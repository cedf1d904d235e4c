# Writes PDFs (for pdf.rs) encrypted with the Standard security handler, V4 R4, an empty user
# password and a crypt filter StdCF of method V2 (RC4, 128 bits), whose streams name their crypt
# filter themselves (ISO 32000-1 7.4.10, 7.6.5): /Filter [/Crypt /FlateDecode] /DecodeParms
# [<< /Name NAME >> null]. qpdf and mutool decrypt such a stream with the filter it names,
# whatever /StmF says. RC4 and MD5 only, so the standard library writes them. Arguments: the
# output directory and a program to attach (/bin/true).
import hashlib, struct, zlib, sys, os

PAD = bytes.fromhex('28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A')
ID = b'\x42' * 16
P = -3904
KEY_LEN = 16

def rc4(key, data):
    s = list(range(256)); j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256; s[i], s[j] = s[j], s[i]
    i = j = 0; out = bytearray()
    for b in data:
        i = (i + 1) % 256; j = (j + s[i]) % 256; s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) % 256])
    return bytes(out)

def keys():
    """Algorithms 3, 2 and 5 for owner password 'owner' and the empty user password."""
    h = hashlib.md5((b'owner' + PAD)[:32]).digest()
    for _ in range(50): h = hashlib.md5(h[:KEY_LEN]).digest()
    owner_key = h[:KEY_LEN]; o = rc4(owner_key, PAD)
    for i in range(1, 20): o = rc4(bytes(b ^ i for b in owner_key), o)
    k = hashlib.md5(PAD + o + struct.pack('<i', P) + ID).digest()
    for _ in range(50): k = hashlib.md5(k[:KEY_LEN]).digest()
    k = k[:KEY_LEN]
    u = rc4(k, hashlib.md5(PAD + ID).digest())
    for i in range(1, 20): u = rc4(bytes(b ^ i for b in k), u)
    return k, o, u + b'\0' * 16

KEY, O, U = keys()

def encrypt(num, data):
    """Algorithm 1: RC4 with the file key extended by the object number, generation 0."""
    return rc4(hashlib.md5(KEY + struct.pack('<I', num)[:3] + b'\0\0').digest()[:KEY_LEN + 5][:16], data)

NAMED = b'/Filter [/Crypt /FlateDecode] /DecodeParms [<< /Name /StdCF >> null]'

def encrypt_dict(stmf):
    return (b'<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /V2 /AuthEvent '
            b'/DocOpen /Length 16 >> >> /StmF %s /StrF /Identity /O <%s> /U <%s> /P %d >>'
            % (stmf, O.hex().encode(), U.hex().encode(), P))

def write(objects, stmf, in_object_stream=(), object_stream_filter=NAMED, encrypt_text=None):
    """objects: {num: (dict or object text, stream data or None, stream encrypted)}; the numbers in
    in_object_stream go into an object stream (its data flated, then encrypted with StdCF) and are
    found through a cross-reference stream that also holds the trailer's keys."""
    out = bytearray(b'%PDF-1.6\n%\xe2\xe3\xcf\xd3\n'); where = {}
    for num, (text, data, encrypted) in sorted(objects.items()):
        if num in in_object_stream:
            continue
        where[num] = len(out)
        if data is None:
            out += b'%d 0 obj\n%s\nendobj\n' % (num, text)
        else:
            data = encrypt(num, data) if encrypted else data
            out += b'%d 0 obj\n<< %s /Length %d >>\nstream\n' % (num, text, len(data)) + data + b'\nendstream\nendobj\n'
    size = max(objects) + 1
    inside = sorted(in_object_stream)
    if inside:
        stm = size; size += 1
        head = b''; body = b''
        for num in inside:
            head += b'%d %d ' % (num, len(body)); body += objects[num][0] + b'\n'
        data = encrypt(stm, zlib.compress(head + body))
        where[stm] = len(out)
        out += (b'%d 0 obj\n<< /Type /ObjStm /N %d /First %d %s /Length %d >>\nstream\n'
                % (stm, len(inside), len(head), object_stream_filter, len(data)) + data + b'\nendstream\nendobj\n')
    xref = size; size += 1
    where[xref] = len(out)
    rows = b''
    for num in range(size):
        if num in where: rows += struct.pack('>BIH', 1, where[num], 0)
        elif num in inside: rows += struct.pack('>BIH', 2, stm, inside.index(num))
        else: rows += struct.pack('>BIH', 0, 0, 65535)
    out += (b'%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /ID [<%s> <%s>] /Encrypt %s '
            b'/Length %d >>\nstream\n' % (xref, size, ID.hex().encode(), ID.hex().encode(), encrypt_text or encrypt_dict(stmf), len(rows))
            + rows + b'\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n' % where[xref])
    return bytes(out)

JS = b"app.alert('named crypt filter')"
PAGES = {2: (b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>', None, False),
         3: (b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>', None, False)}
catalog = {1: (b'<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (' + JS + b') >> >>', None, False), **PAGES}
files = {
    # The catalog and its script inside an object stream that names StdCF, the document's /StmF.
    'objstm.pdf': write(catalog, b'/StdCF', in_object_stream=(1, 2, 3)),
    # The same, in a document whose /StmF is Identity: only the stream's own filter decrypts it.
    'objstm_stmf_identity.pdf': write(catalog, b'/Identity', in_object_stream=(1, 2, 3)),
    # A program attached (shown as report.xml), its stream naming StdCF under /StmF Identity.
    'attachment.pdf': write({
        1: (b'<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [<7265706f72742e786d6c> 4 0 R] >> >> >>', None, False),
        **PAGES,
        4: (b'<< /Type /Filespec /F <7265706f72742e786d6c> /EF << /F 5 0 R >> >>', None, False),
        5: (b'/Type /EmbeddedFile ' + NAMED, zlib.compress(open(sys.argv[2], 'rb').read()), True),
    }, b'/Identity'),
    # The encryption dictionary's /V, /R and crypt filters given by reference, which qpdf
    # and mutool resolve; the object stream decrypted by the document's /StmF.
    'encrypt_refs.pdf': write({**catalog,
        4: (b'4', None, False),
        5: (b'<< /StdCF 6 0 R >>', None, False),
        6: (b'<< /CFM /V2 /AuthEvent /DocOpen /Length 16 >>', None, False),
    }, b'/StdCF', in_object_stream=(1, 2, 3), object_stream_filter=b'/Filter /FlateDecode',
        encrypt_text=encrypt_dict(b'/StdCF').replace(b'/V 4 /R 4', b'/V 4 0 R /R 4 0 R').replace(
            b'/CF << /StdCF << /CFM /V2 /AuthEvent /DocOpen /Length 16 >> >>', b'/CF 5 0 R')),
    # The control: a script stream naming the Identity filter is not encrypted, under /StmF StdCF.
    'identity_named.pdf': write({
        1: (b'<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS 4 0 R >> >>', None, False),
        **PAGES,
        4: (b'/Filter [/Crypt /FlateDecode] /DecodeParms [<< /Name /Identity >> null]', zlib.compress(JS), False),
    }, b'/StdCF'),
}
for name, pdf in files.items():
    with open(os.path.join(sys.argv[1], name), 'wb') as f:
        f.write(pdf)
