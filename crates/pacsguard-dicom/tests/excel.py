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

def rc4(key, data):
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for b in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(b ^ s[(s[i] + s[j]) % 256])
    return bytes(out)

# XOR obfuscation, method 1 ([MS-OFFCRYPTO] 2.3.7.1-2.3.7.4): the tables of the spec.
XOR_PAD = [0xBB, 0xFF, 0xFF, 0xBA, 0xFF, 0xFF, 0xB9, 0x80, 0x00, 0xBE, 0x0F, 0x00, 0xBF, 0x0F, 0x00]
XOR_INITIAL = [0xE1F0, 0x1D0F, 0xCC9C, 0x84C0, 0x110C, 0x0E10, 0xF1CE, 0x313E, 0x1872, 0xE139,
               0xD40F, 0x84F9, 0x280C, 0xA96A, 0x4EC3]
XOR_MATRIX = [
    0xAEFC, 0x4DD9, 0x9BB2, 0x2745, 0x4E8A, 0x9D14, 0x2A09, 0x7B61, 0xF6C2, 0xFDA5, 0xEB6B,
    0xC6F7, 0x9DCF, 0x2BBF, 0x4563, 0x8AC6, 0x05AD, 0x0B5A, 0x16B4, 0x2D68, 0x5AD0, 0x0375,
    0x06EA, 0x0DD4, 0x1BA8, 0x3750, 0x6EA0, 0xDD40, 0xD849, 0xA0B3, 0x5147, 0xA28E, 0x553D,
    0xAA7A, 0x44D5, 0x6F45, 0xDE8A, 0xAD35, 0x4A4B, 0x9496, 0x390D, 0x721A, 0xEB23, 0xC667,
    0x9CEF, 0x29FF, 0x53FE, 0xA7FC, 0x5FD9, 0x47D3, 0x8FA6, 0x0F6D, 0x1EDA, 0x3DB4, 0x7B68,
    0xF6D0, 0xB861, 0x60E3, 0xC1C6, 0x93AD, 0x377B, 0x6EF6, 0xDDEC, 0x45A0, 0x8B40, 0x06A1,
    0x0D42, 0x1A84, 0x3508, 0x6A10, 0xAA51, 0x4483, 0x8906, 0x022D, 0x045A, 0x08B4, 0x1168,
    0x76B4, 0xED68, 0xCAF1, 0x85C3, 0x1BA7, 0x374E, 0x6E9C, 0x3730, 0x6E60, 0xDCC0, 0xA9A1,
    0x4363, 0x86C6, 0x1DAD, 0x3331, 0x6662, 0xCCC4, 0x89A9, 0x0373, 0x06E6, 0x0DCC, 0x1021,
    0x2042, 0x4084, 0x8108, 0x1231, 0x2462, 0x48C4]

def xor_verifier(pw):
    v = 0
    for b in list(pw[::-1]) + [len(pw)]:
        v = ((1 if v & 0x4000 else 0) ^ ((v << 1) & 0x7FFF)) ^ b
    return v ^ 0xCE4B

def xor_key(pw):
    key = XOR_INITIAL[len(pw) - 1]
    element = 104
    for b in pw[::-1]:
        for _ in range(7):
            if b & 0x40:
                key ^= XOR_MATRIX[element]
            b = (b << 1) & 0xFF
            element -= 1
    return key

def xor_array(pw):
    key = xor_key(pw)
    ror1 = lambda x: ((x >> 1) | (x << 7)) & 0xFF
    src = list(pw) + XOR_PAD[:16 - len(pw)]
    return [ror1(src[i] ^ (key >> 8 if i % 2 else key & 0xFF)) for i in range(16)]

def encrypt_biff8(stream, password, scheme):
    # A workbook stream encrypted as Excel writes it ([MS-XLS] 2.2.10, [MS-OFFCRYPTO] 2.3.5
    # and 2.3.6): a FILEPASS record after the globals' BOF, then every record's data (but
    # for the records never encrypted, and a BoundSheet8's stream position) XORed with RC4
    # keystream at its offset in its 1024-byte block, a new key per block.
    # scheme: 'rc4' (1.1, MD5) or 'cryptoapi' / 'cryptoapi40' (SHA-1, 128- or 40-bit key).
    import hashlib
    pw = password.encode('utf-16-le')
    salt = bytes(range(0x30, 0x40))
    verifier = bytes(range(0xA0, 0xB0))
    if scheme == 'xor':
        pwb = password.encode('latin-1')
        filepass = struct.pack('<HHH', 0, xor_key(pwb), xor_verifier(pwb))
    elif scheme == 'rc4':
        h1 = hashlib.md5((hashlib.md5(pw).digest()[:5] + salt) * 16).digest()[:5]
        def key(block):
            return hashlib.md5(h1 + struct.pack('<I', block)).digest()
        sealed = rc4(key(0), verifier + hashlib.md5(verifier).digest())
        filepass = struct.pack('<HHH', 1, 1, 1) + salt + sealed
    else:
        bits = 40 if scheme == 'cryptoapi40' else 128
        h0 = hashlib.sha1(salt + pw).digest()
        def key(block):
            k = hashlib.sha1(h0 + struct.pack('<I', block)).digest()[:bits // 8]
            return k + b'\0' * 11 if bits == 40 else k
        csp = 'Microsoft Enhanced Cryptographic Provider v1.0\0'.encode('utf-16-le')
        header = struct.pack('<IIIIIIII', 0x04, 0, 0x6801, 0x8004, bits, 1, 0, 0) + csp
        sealed = rc4(key(0), verifier + hashlib.sha1(verifier).digest())
        filepass = (struct.pack('<HHHII', 1, 4, 2, 0x04, len(header)) + header +
                    struct.pack('<I', 16) + salt + sealed[:16] + struct.pack('<I', 20) + sealed[16:])
    # Insert FILEPASS after the first BOF; the BoundSheet8 positions move by its size.
    first = 4 + struct.unpack('<H', stream[2:4])[0]
    fp = rec(0x002F, filepass)
    records, at = [], first
    while at + 4 <= len(stream):
        rid, n = struct.unpack('<HH', stream[at:at + 4])
        data = stream[at + 4:at + 4 + n]
        if rid == 0x0085:
            data = struct.pack('<I', struct.unpack('<I', data[:4])[0] + len(fp)) + data[4:]
        records.append((rid, data))
        at += 4 + n
    out = bytearray(stream[:first] + fp)
    for rid, data in records:
        offset = len(out) + 4
        plain_from = 4 if rid == 0x0085 else 0
        if rid in (0x0809, 0x002F, 0x0194, 0x0195, 0x00E1, 0x0196, 0x0138):
            plain_from = len(data)
        enc = bytearray(data)
        if scheme == 'xor':
            # EncryptData_Method1: rotated left 5 bits, then XORed; the index starts at the
            # position after the record's data (a BoundSheet8: 4 further), modulo 16.
            xa = xor_array(password.encode('latin-1'))
            index = (offset + len(data) + (4 if rid == 0x0085 else 0)) % 16
            for i in range(plain_from, len(data)):
                enc[i] = (((enc[i] << 5) | (enc[i] >> 3)) & 0xFF) ^ xa[index]
                index = (index + 1) % 16
            out += struct.pack('<HH', rid, len(data)) + enc
            continue
        for i in range(plain_from, len(data)):
            pos = offset + i
            stream_key = rc4(key(pos // 1024), bytes(1024))
            enc[i] ^= stream_key[pos % 1024]
        out += struct.pack('<HH', rid, len(data)) + enc
    return bytes(out)

def biff8_long(macro):
    # biff8() with 20 WriteAccess records (112 bytes each) before its BoundSheet8, which
    # then lies in the stream's third 1024-byte block: three RC4 keys once encrypted.
    stream = biff8(macro, pad=False)
    first = 4 + struct.unpack('<H', stream[2:4])[0]
    filler = b''.join(rec(0x005C, b'PacsGuard test %02d' % n + b' ' * 95) for n in range(20))
    rest = bytearray(stream[first:])
    # BoundSheet8 is the first record after BOF: its lbPlyPos moves by the filler.
    pos = struct.unpack('<I', rest[4:8])[0] + len(filler)
    rest[4:8] = struct.pack('<I', pos)
    return stream[:first] + filler + bytes(rest)

def padded(stream):
    # Past the mini stream cutoff, in whole (empty) record headers: msoffcrypto walks the
    # records to the stream's end.
    return stream + b'\0' * (-(-(8192 - len(stream)) // 4) * 4)

for name, macro, password, scheme in [
    ('velvet_rc4.xls', True, 'VelvetSweatshop', 'rc4'),
    ('velvet_cryptoapi.xls', True, 'VelvetSweatshop', 'cryptoapi'),
    ('velvet_cryptoapi40.xls', True, 'VelvetSweatshop', 'cryptoapi40'),
    ('velvet_plain.xls', False, 'VelvetSweatshop', 'cryptoapi'),
    ('other_rc4.xls', True, 'hospital2024', 'rc4'),
    ('other_cryptoapi.xls', True, 'hospital2024', 'cryptoapi'),
    ('velvet_xor.xls', True, 'VelvetSweatshop', 'xor'),
    ('velvet_xor_plain.xls', False, 'VelvetSweatshop', 'xor'),
    ('other_xor.xls', True, 'hospital2024', 'xor'),
]:
    cfb(os.path.join(out, name), 'Workbook', padded(encrypt_biff8(biff8_long(macro), password, scheme)))
cfb(os.path.join(out, 'long.xls'), 'Workbook', padded(biff8_long(True)))

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
