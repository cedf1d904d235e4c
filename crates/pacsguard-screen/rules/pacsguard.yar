/*
 * PacsGuard's own rules, loaded by default by `pacsguard scan` (and usable with any YARA
 * engine). They complement the built-in structural checks (preamble, executables hidden
 * in elements, active PDFs), which need no rule: these look for payloads that have no
 * structure to check, such as script and encoded executables in DICOM text elements.
 *
 * Metadata read by PacsGuard: `severity` (info, warning, alert; default alert), `format`
 * (the finding's format), `description` (the finding's detail).
 *
 * The rules apply to every file screened and to what PacsGuard decodes out of one (the
 * inflated data set of a deflated transfer syntax, encapsulated documents): a payload is
 * a payload whether or not the file has a preamble and `DICM`, and a bare data set or an
 * inflated one has neither. HTML `<script>` tags and event handlers are found by the
 * built-in markup check (which names them as what they are: script for a web viewer or
 * mshta), not here.
 */

rule pacsguard_eicar_test_file
{
    meta:
        description = "EICAR anti-malware test string (a harmless test of the screening chain)"
        severity = "alert"
        format = "eicar"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar
}

rule pacsguard_dicom_base64_executable
{
    meta:
        description = "DICOM file carrying a base64-encoded Windows executable (TVqQ... is 'MZ' encoded)"
        severity = "alert"
        format = "pe"
    strings:
        $mz_base64 = "TVqQAAMAAAAEAAAA"
        $mz_base64_alt = "TVpQAAIAAAAEAA8A"
    condition:
        any of them
}

rule pacsguard_dicom_script_payload
{
    meta:
        description = "DICOM file carrying script that launches commands (PowerShell, WScript, mshta)"
        severity = "alert"
        format = "script"
    strings:
        // -EncodedCommand as PowerShell reads it: pwsh too, any prefix of the name from -e
        // (and the alias -ec), after `-`, `/` or an en dash, em dash or horizontal bar, and
        // after the long options malware puts first (-NoProfile -NonInteractive
        // -WindowStyle Hidden -ExecutionPolicy Bypass is 70 bytes: 64 missed it).
        $powershell_encoded = /(powershell|pwsh)(\.exe)?[^\x00\n]{0,256}\s(-|\/|\xE2\x80[\x93-\x95])(ec|e(n(c(o(d(e(d(c(o(m(m(a(n(d)?)?)?)?)?)?)?)?)?)?)?)?)?)\s+[A-Za-z0-9+\/=]{32,}/ nocase
        $wscript = "WScript.Shell" nocase ascii wide
        $activex = "ActiveXObject" nocase ascii wide
        // Long enough anchors that compressed pixel data cannot match them by chance.
        $mshta = /mshta(\.exe)?\s+(vbscript|javascript|https?):/ nocase
    condition:
        any of them
}

rule pacsguard_dicom_office_macro
{
    meta:
        description = "DICOM file carrying an Office document with VBA macros"
        severity = "alert"
        format = "ole"
    strings:
        $ole = { D0 CF 11 E0 A1 B1 1A E1 }
        $vba = "_VBA_PROJECT" wide
    condition:
        $ole and $vba
}
