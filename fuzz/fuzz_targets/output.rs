//! The host's decoding of plugin messages: `serde_json::from_slice::<Output>`
//! (the hand-written fast reader of `plugin-api/src/messages/de.rs`, which
//! falls back to serde's derived reader when the tag is not the first key).
//!
//! Checks, on arbitrary bytes:
//! - decoding never panics;
//! - what decodes (other than `Output::Unknown`) serializes, and reads back
//!   as the same value (round trip);
//! - the fast path and the fallback agree: the same object with every
//!   object's keys in reverse order (tags last, or first if they were last)
//!   decodes to the same value. Only for inputs without duplicate keys, whose
//!   meaning a key order cannot change.
#![no_main]

use std::collections::HashSet;
use std::fmt;

use drctl_protocol::messages::Output;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

fuzz_target!(|data: &[u8]| {
    let Ok(out) = serde_json::from_slice::<Output>(data) else {
        return;
    };
    if out != Output::Unknown {
        let text = serde_json::to_string(&out).expect("a decoded Output serializes");
        let back: Output = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("own serialization does not decode: {e}\n{text}"));
        assert_eq!(back, out, "round trip through {text}");
    }
    let unique = serde_json::from_slice::<Unique>(data).is_ok();
    if let (true, Ok(value)) = (unique, serde_json::from_slice::<serde_json::Value>(data)) {
        let reversed = reversed_json(&value);
        match serde_json::from_str::<Output>(&reversed) {
            Ok(other) => assert_eq!(other, out, "key order changed the meaning: {reversed}"),
            Err(e) => panic!("key order changed the meaning: {e}\n{reversed}"),
        }
    }
});

/// `v` as JSON with every object's keys in reverse order.
fn reversed_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| {
                    let key = serde_json::to_string(k).expect("a key serializes");
                    format!("{key}:{}", reversed_json(v))
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Any JSON without a duplicate key in any object.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without duplicate keys")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}
