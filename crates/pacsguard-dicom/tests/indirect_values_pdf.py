# Writes PDFs (for pdf.rs) whose stream parameters are indirect references, which qpdf and
# mutool resolve like any other value: an object stream whose /N and /First are references
# (holding the catalog and its script, found through a cross-reference stream), and an
# attached program behind a PNG predictor whose /Predictor and /Columns are references.
# Arguments: the output directory and a program to attach (/bin/true).
import struct, zlib, sys, os

def xref_stream_pdf(objects, inside, stream_dict):
    """objects: {num: text}; the numbers in `inside` go into one object stream, whose
    dictionary is `stream_dict` (given the counts) with /Filter /FlateDecode."""
    out = bytearray(b'%PDF-1.6\n%\xe2\xe3\xcf\xd3\n'); where = {}
    head = b''; body = b''
    for num in inside:
        head += b'%d %d ' % (num, len(body)); body += objects[num] + b'\n'
    stm = max(objects) + 1
    counts = {b'N': len(inside), b'First': len(head)}
    data = zlib.compress(head + body)
    for num, text in sorted(objects.items()):
        if num in inside:
            continue
        where[num] = len(out)
        out += b'%d 0 obj\n%s\nendobj\n' % (num, text % counts if b'%(' in text else text)
    where[stm] = len(out)
    out += (b'%d 0 obj\n<< /Type /ObjStm %s /Filter /FlateDecode /Length %d >>\nstream\n'
            % (stm, stream_dict, len(data)) + data + b'\nendstream\nendobj\n')
    xref = stm + 1; size = xref + 1; where[xref] = len(out)
    rows = b''
    for num in range(size):
        if num in where: rows += struct.pack('>BIH', 1, where[num], 0)
        elif num in inside: rows += struct.pack('>BIH', 2, stm, inside.index(num))
        else: rows += struct.pack('>BIH', 0, 0, 65535)
    out += (b'%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n'
            % (xref, size, len(rows)) + rows + b'\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n' % where[xref])
    return bytes(out)

def png_up(data, columns):
    data += b'\0' * (-len(data) % columns)
    out = bytearray(); prev = bytes(columns)
    for i in range(0, len(data), columns):
        row = data[i:i + columns]
        out.append(2); out += bytes((b - p) & 0xff for b, p in zip(row, prev)); prev = row
    return bytes(out)

def classic_pdf(objects):
    out = bytearray(b'%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'); offsets = []
    for num, text in enumerate(objects, 1):
        offsets.append(len(out)); out += b'%d 0 obj\n' % num + text + b'\nendobj\n'
    x = len(out)
    out += b'xref\n0 %d\n0000000000 65535 f \n' % (len(objects) + 1)
    out += b''.join(b'%010d 00000 n \n' % o for o in offsets)
    out += b'trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' % (len(objects) + 1, x)
    return bytes(out)

PAGES = b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>'
PAGE = b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>'
objstm = xref_stream_pdf({
    1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert\\('by reference'\\)) >> >>",
    2: PAGES, 3: PAGE,
    4: b'%(N)d', 5: b'%(First)d',
}, [1, 2, 3], b'/N 4 0 R /First 5 0 R')
program = open(sys.argv[2], 'rb').read()
predicted = zlib.compress(png_up(program, 8))
attachment = classic_pdf([
    b'<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(report.xml) 4 0 R] >> >> >>',
    PAGES, PAGE,
    b'<< /Type /Filespec /F (report.xml) /EF << /F 5 0 R >> >>',
    b'<< /Type /EmbeddedFile /Filter /FlateDecode /DecodeParms << /Predictor 6 0 R /Columns 7 0 R >> /Length %d >>\nstream\n' % len(predicted) + predicted + b'\nendstream',
    b'12', b'8',
])
for name, pdf in (('objstm_refs.pdf', objstm), ('predictor_refs.pdf', attachment)):
    with open(os.path.join(sys.argv[1], name), 'wb') as f:
        f.write(pdf)
