# Writes a JAR (for real_readers.rs) whose classic end record is saturated (ZIP64) and whose
# ZIP64 end record is where the locator's offset says (Java follows it), not right before the
# locator (where Python looks): padding sits between them. Entries deflated. Arguments: the
# output, optionally a file to put before the JAR, optionally the padding length.
import struct, zlib, sys
def deflate(d):
    c = zlib.compressobj(9, zlib.DEFLATED, -15); return c.compress(d) + c.flush()
def local(name, data, comp):
    return struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 8, 0, 0, zlib.crc32(data), len(comp), len(data), len(name), 0) + name + comp
def central(name, data, comp, off):
    return struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 8, 0, 0, zlib.crc32(data), len(comp), len(data), len(name), 0, 0, 0, 0, 0, off) + name
files = [(b'META-INF/MANIFEST.MF', b'Manifest-Version: 1.0\r\nMain-Class: Main\r\n\r\n'),
         (b'Main.class', open('Main.class','rb').read())]
prefix = open(sys.argv[2],'rb').read() if len(sys.argv) > 2 else b''
out = bytearray(prefix); offs = []
for n, d in files:
    offs.append(len(out) - len(prefix)); out += local(n, d, deflate(d))
cd_off = len(out) - len(prefix)
cd = b''.join(central(n, d, deflate(d), o) for (n, d), o in zip(files, offs))
out += cd
z64_pos = len(out)
out += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, len(files), len(files), len(cd), cd_off)
out += b'\0' * int(sys.argv[3] if len(sys.argv) > 3 else 20)
out += struct.pack('<IIQI', 0x07064b50, 0, z64_pos, 1)
out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
open(sys.argv[1], 'wb').write(out)
