/*
 * bench/scan/equivalent.yar: what `pacsguard scan`'s built-in checks do, written as YARA
 * signatures for the `yara` CLI anchor of bench/scan.sh. The anchor runs this file
 * together with crates/pacsguard-screen/rules/pacsguard.yar (the four rules pacsguard
 * applies itself), so both tools look for the same things.
 *
 * What a signature can and cannot express (bench/README.md, "Screening", has the table):
 *  - The preamble checks are exact: the same magics pacsguard's format::sniff() knows,
 *    at offset 0, in a file with DICM at offset 128.
 *  - pacsguard walks the data set and confirms structure (PE NT headers, ELF/Mach-O
 *    headers, a ZIP end record whose directory is really there, a PDF whose catalog
 *    really runs JavaScript). These rules search the whole file, pixel data included,
 *    for the magic alone: they can match by chance where pacsguard would not, and they
 *    see nothing in deflated data sets.
 */

private rule dicm_at_128
{
    condition:
        uint32(128) == 0x4D434944
}

/* ---- preamble: an executable or active-content header before DICM ---- */

rule preamble_pe
{
    condition:
        dicm_at_128 and uint16(0) == 0x5A4D
}

rule preamble_elf
{
    condition:
        dicm_at_128 and uint32(0) == 0x464C457F
}

rule preamble_macho
{
    condition:
        dicm_at_128 and (
            uint32be(0) == 0xFEEDFACE or uint32be(0) == 0xCEFAEDFE or
            uint32be(0) == 0xFEEDFACF or uint32be(0) == 0xCFFAEDFE or
            uint32be(0) == 0xCAFEBABF or uint32be(0) == 0xBFBAFECA or
            uint32be(0) == 0xCAFEBABE or uint32be(0) == 0xBEBAFECA)
}

rule preamble_script
{
    strings:
        $batch = "@echo" nocase
    condition:
        dicm_at_128 and (uint16(0) == 0x2123 or $batch at 0)
}

rule preamble_markup
{
    strings:
        // Browsers skip a byte-order mark and leading white space; so does pacsguard.
        $markup = /(\xEF\xBB\xBF)?[ \t\r\n\x0c]{0,32}<(html|!doctype|script|hta:|body|head|iframe|object|embed|meta|svg|\?xml)/ nocase
    condition:
        dicm_at_128 and $markup at 0
}

rule preamble_pdf
{
    strings:
        $pdf = "%PDF-"
    condition:
        // Readers accept the header anywhere in the first KiB.
        dicm_at_128 and $pdf in (0..1023)
}

rule preamble_archive_or_document
{
    condition:
        dicm_at_128 and (
            uint32(0) == 0x04034B50 or uint32(0) == 0x06054B50 or uint32(0) == 0x08074B50 or // ZIP
            (uint32(0) == 0x21726152 and uint16(4) == 0x071A) or                             // RAR
            (uint32(0) == 0xAFBC7A37 and uint16(4) == 0x1C27) or                             // 7z
            (uint32(0) == 0x4643534D and uint32(4) == 0) or                                  // CAB
            (uint32(0) == 0xE011CFD0 and uint32(4) == 0xE11AB1A1) or                         // OLE
            (uint32(0) == 0x0000004C and uint32(4) == 0x00021401))                           // LNK
}

/* ---- anywhere in the file: what pacsguard looks for inside element values ---- */

rule embedded_pe
{
    strings:
        $mz = "MZ"
    condition:
        // A DOS header whose e_lfanew reaches a PE\0\0 signature (pacsguard also checks
        // the NT headers that follow).
        for any i in (1..#mz) : (uint32(@mz[i] + uint32(@mz[i] + 0x3C)) == 0x00004550)
}

rule embedded_elf
{
    strings:
        // class 32/64, data LE/BE, version 1
        $elf = { 7F 45 4C 46 (01 | 02) (01 | 02) 01 }
    condition:
        $elf
}

rule embedded_macho
{
    strings:
        $m32 = { CE FA ED FE }
        $m64 = { CF FA ED FE }
        $m32be = { FE ED FA CE }
        $m64be = { FE ED FA CF }
    condition:
        any of them
}

rule embedded_zip
{
    strings:
        $eocd = { 50 4B 05 06 }
    condition:
        // An end-of-central-directory record anywhere, or one that ends the file.
        $eocd or uint32(filesize - 22) == 0x06054B50
}

rule embedded_pdf_javascript
{
    strings:
        $pdf = "%PDF-"
        $js = "/JavaScript"
        $js_short = "/JS"
    condition:
        $pdf and ($js or $js_short)
}
