# excel.py OUT_DIR: Excel files with and without Excel 4.0 (XLM) macro sheets, laid out as
# Excel writes them ([MS-XLS], [MS-CFB], ECMA-376): OOXML packages (.xlsm/.xlsx) and BIFF8
# workbooks in a compound file (.xls). Used by tests/real_readers.rs, which has olevba
# (oletools) confirm the .xls files where it is installed.
import struct, sys, zipfile, os
out = sys.argv[1]

def ooxml(path, macro, folder='macrosheets'):
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/>'
          + ('<Override PartName="/xl/%s/sheet1.xml" ContentType="application/vnd.ms-excel.macrosheet+xml"/>' % folder if macro else
             '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
          + '</Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            '</Relationships>')
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
          '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>'
          + ('<definedNames><definedName name="_xlnm.Auto_Open" hidden="1">Sheet1!$A$1</definedName></definedNames>' if macro else '')
          + '</workbook>')
    kind = 'xlMacrosheet' if macro else 'worksheet'
    target = folder + '/sheet1.xml' if macro else 'worksheets/sheet1.xml'
    wbrels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/%s" Target="%s"/>'
              '</Relationships>') % (kind, target)
    if macro:
        sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<xm:macrosheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                 'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData>'
                 '<row r="1"><c r="A1"><f>EXEC("calc.exe")</f></c></row>'
                 '<row r="2"><c r="A2"><f>HALT()</f></c></row></sheetData></xm:macrosheet>')
    else:
        sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                 '<row r="1"><c r="A1"><f>SUM(B1:B9)</f></c></row></sheetData></worksheet>')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('[Content_Types].xml', ct)
        z.writestr('_rels/.rels', rels)
        z.writestr('xl/workbook.xml', wb)
        z.writestr('xl/_rels/workbook.xml.rels', wbrels)
        z.writestr('xl/' + target, sheet)

def rec(rid, data=b''):
    return struct.pack('<HH', rid, len(data)) + data

def biff8(macro, pad=True, encrypted=False):
    bof_globals = rec(0x0809, struct.pack('<HHHHII', 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6))
    if encrypted:
        # FILEPASS, RC4 CryptoAPI header (its salt and verifier left zero): what follows
        # is encrypted, as Excel writes a file protected with the default password.
        bof_globals += rec(0x002F, struct.pack('<HHH', 1, 4, 2) + b'\0' * 48)
    name = b'Macro1' if macro else b'Sheet1'
    def boundsheet(pos):
        return rec(0x0085, struct.pack('<IBBBB', pos, 0, 1 if macro else 0, len(name), 0) + name)
    globals_len = len(bof_globals) + len(boundsheet(0)) + 4
    sheet = rec(0x0809, struct.pack('<HHHHII', 0x0600, 0x0040 if macro else 0x0010, 0x0DBB, 0x07CC, 0, 6)) + rec(0x000A)
    stream = bof_globals + boundsheet(globals_len) + rec(0x000A) + sheet
    if not pad:
        return stream  # small: kept in the mini stream
    return stream + b'\0' * (8192 - len(stream))  # a regular stream, not the mini stream

def cfb(path, stream_name, stream, decoy=None):
    # decoy: a second stream (name, bytes) listed first in the directory, both children
    # of the root storage.
    streams = ([decoy] if decoy else []) + [(stream_name, stream)]
    ss = 512
    ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    fat = [FATSECT, ENDOFCHAIN]
    body, starts = b'', []
    for _, data in streams:
        n = (len(data) + ss - 1) // ss
        first = 2 + len(body) // ss
        starts.append(first)
        fat += [first + 1 + i for i in range(n - 1)] + [ENDOFCHAIN]
        body += data + b'\0' * (n * ss - len(data))
    fat += [FREESECT] * (128 - len(fat))
    header = (b'\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1' + b'\0' * 16 +
              struct.pack('<HHHHH', 0x3E, 3, 0xFFFE, 9, 6) + b'\0' * 6 +
              struct.pack('<IIIIIIIII', 0, 1, 1, 0, 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0) +
              struct.pack('<I', 0) + struct.pack('<I', FREESECT) * 108)
    assert len(header) == 512
    # The root's class: an Excel 97-2003 workbook (CLSID 00020820-0000-0000-C000-000000000046).
    excel = bytes.fromhex('2008020000000000c000000000000046')
    def entry(name, kind, child, start, size, right=NOSTREAM):
        n16 = (name + '\0').encode('utf-16-le') if name else b''
        return (n16 + b'\0' * (64 - len(n16)) + struct.pack('<HBB', len(n16), kind, 1) +
                struct.pack('<III', NOSTREAM, right, child) + (excel if kind == 5 else b'\0' * 16) + b'\0' * 4 +
                b'\0' * 16 + struct.pack('<IQ', start, size))
    directory = entry('Root Entry', 5, 1, ENDOFCHAIN, 0)
    for i, ((name, data), start) in enumerate(zip(streams, starts)):
        right = i + 2 if i + 1 < len(streams) else NOSTREAM
        directory += entry(name, 2, NOSTREAM, start, len(data), right)
    directory += entry('', 0, NOSTREAM, 0, 0) * (3 - len(streams))
    assert len(directory) == 512
    with open(path, 'wb') as f:
        f.write(header + struct.pack('<128I', *fat) + directory + body)

def cfb_mini(path, stream_name, stream):
    # A stream under the 4096-byte cutoff lives in the mini stream: 64-byte sectors in the
    # root entry's chain, linked by the mini FAT. Sectors: 0 FAT, 1 directory, 2 mini FAT,
    # 3.. the mini stream.
    ss, ms = 512, 64
    mini_n = (len(stream) + ms - 1) // ms
    mini = stream + b'\0' * (mini_n * ms - len(stream))
    n = (len(mini) + ss - 1) // ss
    mini += b'\0' * (n * ss - len(mini))
    ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    fat = [FATSECT, ENDOFCHAIN, ENDOFCHAIN] + [4 + i for i in range(n - 1)] + [ENDOFCHAIN]
    fat += [FREESECT] * (128 - len(fat))
    minifat = [1 + i for i in range(mini_n - 1)] + [ENDOFCHAIN]
    minifat += [FREESECT] * (128 - len(minifat))
    header = (b'\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1' + b'\0' * 16 +
              struct.pack('<HHHHH', 0x3E, 3, 0xFFFE, 9, 6) + b'\0' * 6 +
              struct.pack('<IIIIIIIII', 0, 1, 1, 0, 4096, 2, 1, ENDOFCHAIN, 0) +
              struct.pack('<I', 0) + struct.pack('<I', FREESECT) * 108)
    excel = bytes.fromhex('2008020000000000c000000000000046')
    def entry(name, kind, child, start, size):
        n16 = (name + '\0').encode('utf-16-le') if name else b''
        return (n16 + b'\0' * (64 - len(n16)) + struct.pack('<HBB', len(n16), kind, 1) +
                struct.pack('<III', NOSTREAM, NOSTREAM, child) + (excel if kind == 5 else b'\0' * 16) +
                b'\0' * 4 + b'\0' * 16 + struct.pack('<IQ', start, size))
    directory = (entry('Root Entry', 5, 1, 3, len(mini)) + entry(stream_name, 2, NOSTREAM, 0, len(stream)) +
                 entry('', 0, NOSTREAM, 0, 0) * 2)
    with open(path, 'wb') as f:
        f.write(header + struct.pack('<128I', *fat) + directory + struct.pack('<128I', *minifat) + mini)

cfb_mini(os.path.join(out, 'mini.xls'), 'Workbook', biff8(True, pad=False))
cfb_mini(os.path.join(out, 'plain_mini.xls'), 'Workbook', biff8(False, pad=False))
ooxml(os.path.join(out, 'xlm.xlsm'), True)
ooxml(os.path.join(out, 'plain.xlsx'), False)
# The macro sheet stored as a worksheet part: Excel goes by its declared content type.
ooxml(os.path.join(out, 'renamed.xlsm'), True, folder='worksheets')
cfb(os.path.join(out, 'xlm.xls'), 'Workbook', biff8(True))
cfb(os.path.join(out, 'plain.xls'), 'Workbook', biff8(False))
cfb(os.path.join(out, 'encrypted.xls'), 'Workbook', biff8(True, encrypted=True))
# A BIFF5 `Book` stream without macros listed before the `Workbook` Excel reads.
cfb(os.path.join(out, 'decoy.xls'), 'Workbook', biff8(True), decoy=('Book', biff8(False)))
