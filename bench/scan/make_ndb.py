#!/usr/bin/env python3
"""Writes bench/scan.sh's ClamAV anchor database (.ndb) to stdout.

The same checks as bench/scan/equivalent.yar, in ClamAV's extended signature format
(`Name:TargetType:Offset:HexSignature`, target 0 = any file). An .ndb signature has no
`and`, no `nocase`, no regular expressions and no arithmetic on offsets, so:
  - preamble checks are exact: the magic at offset 0, a fixed-width gap, DICM at 128;
  - markup tags are listed in lower and upper case only, without leading white space;
  - an embedded PE is "MZ, then PE\\0\\0 within 1 KiB" (yara follows e_lfanew; pacsguard
    also checks the NT headers);
  - pacsguard.yar's rules become plain strings (EICAR, base64 MZ headers, script launchers
    in their usual spellings, OLE + _VBA_PROJECT); the DICM-at-128 condition is dropped.
"""


def h(data: bytes) -> str:
    return data.hex()


DICM = h(b"DICM")
lines = []


def preamble(name: str, magic: bytes) -> None:
    lines.append(f"PacsGuard.Preamble.{name}:0:0:{h(magic)}{{{128 - len(magic)}}}{DICM}")


preamble("PE", b"MZ")
preamble("ELF", b"\x7fELF")
for i, magic in enumerate(["feedface", "cefaedfe", "feedfacf", "cffaedfe",
                           "cafebabf", "bfbafeca", "cafebabe", "bebafeca"]):
    preamble(f"MachO.{i}", bytes.fromhex(magic))
preamble("Script.Shebang", b"#!")
for spelling in [b"@echo", b"@ECHO", b"@Echo"]:
    preamble(f"Script.Batch.{spelling[1:].decode()}", spelling)
for tag in [b"<html", b"<!doctype", b"<script", b"<hta:", b"<body", b"<head", b"<iframe",
            b"<object", b"<embed", b"<meta", b"<svg", b"<?xml"]:
    name = tag.decode().strip("<!?:")
    preamble(f"Markup.{name}.lower", tag)
    if tag.upper() != tag:
        preamble(f"Markup.{name}.upper", tag.upper())
preamble("ZIP.LocalHeader", b"PK\x03\x04")
preamble("ZIP.End", b"PK\x05\x06")
preamble("ZIP.Spanned", b"PK\x07\x08")
preamble("RAR", b"Rar!\x1a\x07")
preamble("7z", b"7z\xbc\xaf\x27\x1c")
preamble("CAB", b"MSCF\0\0\0\0")
preamble("OLE", bytes.fromhex("d0cf11e0a1b11ae1"))
preamble("LNK", bytes.fromhex("4c00000001140200"))
# %PDF- anywhere in the first KiB (readers accept it there): offset 0, shifted up to 1019.
lines.append(f"PacsGuard.Preamble.PDF:0:0,1019:{h(b'%PDF-')}")

# Anywhere in the file: what pacsguard looks for inside element values.
PE_SIG = h(b"PE\0\0")
lines.append(f"PacsGuard.Embedded.PE:0:*:{h(b'MZ')}{{-1024}}{PE_SIG}")
lines.append("PacsGuard.Embedded.ELF:0:*:7f454c46(01|02)(01|02)01")
for i, magic in enumerate(["cefaedfe", "cffaedfe", "feedface", "feedfacf"]):
    lines.append(f"PacsGuard.Embedded.MachO.{i}:0:*:{magic}")
EOCD = h(b"PK\x05\x06")
lines.append(f"PacsGuard.Embedded.ZIP.End:0:*:{EOCD}")
lines.append(f"PacsGuard.Embedded.ZIP.EndOfFile:0:EOF-22:{EOCD}")
lines.append(f"PacsGuard.Embedded.PDF.JavaScript:0:*:{h(b'%PDF-')}*{h(b'/JavaScript')}")
lines.append(f"PacsGuard.Embedded.PDF.JS:0:*:{h(b'%PDF-')}*{h(b'/JS')}")

# crates/pacsguard-screen/rules/pacsguard.yar as plain strings.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
lines.append(f"PacsGuard.Rule.EICAR:0:*:{h(EICAR)}")
lines.append(f"PacsGuard.Rule.Base64PE.0:0:*:{h(b'TVqQAAMAAAAEAAAA')}")
lines.append(f"PacsGuard.Rule.Base64PE.1:0:*:{h(b'TVpQAAIAAAAEAA8A')}")
for word in [b"WScript.Shell", b"wscript.shell", b"WSCRIPT.SHELL",
             b"ActiveXObject", b"activexobject", b"mshta", b"MSHTA"]:
    name = word.decode().replace(".", "_")
    lines.append(f"PacsGuard.Rule.Script.{name}:0:*:{h(word)}")
    lines.append(f"PacsGuard.Rule.Script.{name}.wide:0:*:{h(word.decode().encode('utf-16-le'))}")
for tag in [b"<script", b"<SCRIPT"]:
    lines.append(f"PacsGuard.Rule.Script.{tag[1:].decode()}:0:*:{h(tag)}")
lines.append("PacsGuard.Rule.OfficeMacro:0:*:d0cf11e0a1b11ae1*"
             f"{h('_VBA_PROJECT'.encode('utf-16-le'))}")

print("\n".join(lines))
