//! The compact encoding of the backend messages (`messages::compact`, agreed
//! through the `COMPACT` capability): what the host reads from a plugin and
//! a plugin from the host.
//!
//! Checks, on arbitrary bytes (first byte: 0 even = read as an `Output`,
//! odd = as an `Input`; the rest: the message):
//! - decoding never panics, and refuses more than `MAX_BYTES`;
//! - what decodes encodes again, never longer than what was read (varints
//!   may be read in a longer spelling than the one written), and that
//!   decodes to the same value and encodes to the same bytes.
#![no_main]

use drctl_protocol::messages::compact;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let mut again = Vec::new();
    if mode % 2 == 0 {
        let Ok(out) = compact::decode_output(bytes) else {
            return;
        };
        assert!(bytes.len() <= compact::MAX_BYTES);
        compact::encode_output(&out, &mut again).expect("a decoded Output encodes");
        let back = compact::decode_output(&again);
        assert_eq!(back.as_ref(), Ok(&out));
        let mut third = Vec::new();
        compact::encode_output(&out, &mut third).expect("encodes twice");
        assert_eq!(third, again);
    } else {
        let Ok(input) = compact::decode_input(bytes) else {
            return;
        };
        assert!(bytes.len() <= compact::MAX_BYTES);
        compact::encode_input(&input, &mut again).expect("a decoded Input encodes");
        assert_eq!(compact::decode_input(&again).as_ref(), Ok(&input));
    }
    assert!(again.len() <= bytes.len(), "re-encoded longer than read");
});
