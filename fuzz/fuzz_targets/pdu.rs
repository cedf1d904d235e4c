//! The gateway's PDU decoder, C-STORE reassembly and admission on arbitrary bytes: no
//! panic, no allocation past the limits, and every PDU it accepts encodes to bytes that
//! decode to the same PDU.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pacsguard_gateway::admission::admit;
use pacsguard_gateway::config::{GatewayConfig, Listener};
use pacsguard_gateway::dimse::{Assembler, MemoryBudget, parse_command};
use pacsguard_gateway::pdu::Pdu;

fn listener() -> &'static Listener {
    static LISTENER: OnceLock<Listener> = OnceLock::new();
    LISTENER.get_or_init(|| {
        let text = r#"
[[listener]]
listen = "127.0.0.1:0"
allow = ["0.0.0.0/0"]
[[listener.route]]
called_ae = "PACS"
calling_ae = ["CT1"]
sop_classes = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.1"]
transfer_syntaxes = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
upstream = "127.0.0.1:104"
upstream_ae = "ARCHIVE"
"#;
        GatewayConfig::parse(text)
            .expect("the fuzz target's configuration is valid")
            .listeners
            .remove(0)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
    let Ok(pdu) = Pdu::decode(data) else {
        return;
    };
    let bytes = pdu.encode();
    assert_eq!(Pdu::decode(&bytes).as_ref(), Ok(&pdu));
    match &pdu {
        Pdu::AssociateRq(rq) => {
            let _ = admit(listener(), [127, 0, 0, 1].into(), rq, 65536);
        }
        Pdu::PData(pdvs) => {
            let budget = MemoryBudget::new(8192);
            let mut assembler = Assembler::new(4096, std::sync::Arc::clone(&budget));
            for pdv in pdvs {
                match assembler.push(pdv) {
                    Ok(Some(instance)) => {
                        assert!(instance.bytes.as_ref().map_or(true, |b| b.len() <= 4096));
                    }
                    Ok(None) => {}
                    // The relay aborts the association here.
                    Err(_) => break,
                }
                assert!(budget.held() <= 8192);
            }
            drop(assembler);
            assert_eq!(budget.held(), 0, "every reservation given back");
        }
        _ => {}
    }
});
