//! The recording reader on arbitrary bytes: `RecordReader::new`, then
//! `next_record` to the end, each body parsed as the message of its kind
//! (what `drctl replay --check` does).
//!
//! The first byte picks the reader's mode (`validate_all` on or off); the
//! rest is the file. Corrupt files are errors, never panics. The header and
//! every record that parses as an [`Output`] are written again with the
//! [`RecordWriter`] and read back: the same header, and the same time, kind
//! and message of each record; each record's session is read (fast prefix or
//! whole parse) without a panic.
#![no_main]

use std::path::Path;

use drctl_protocol::messages::{Input, Output};
use drctl_protocol::recording::{Kind, OperatorAction, RecordReader, RecordWriter};
use drctl_protocol::Decision;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, file)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz.jsonl");
    let (header, reader) = match RecordReader::new(file, path) {
        Ok(read) => read,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut reader = reader.validate_all(mode & 1 == 1);
    let mut outputs = Vec::new();
    let mut last_line = 1;
    loop {
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        };
        assert!(record.line > last_line, "line numbers go forward");
        last_line = record.line;
        let _ = record.session();
        match record.kind {
            Kind::Event | Kind::Result => {
                if let Ok(out) = serde_json::from_str::<Output>(record.body) {
                    if out != Output::Unknown {
                        outputs.push((record.t, record.kind, out));
                    }
                }
            }
            Kind::Command => {
                let _ = serde_json::from_str::<Input>(record.body);
            }
            Kind::Decision => {
                let _ = serde_json::from_str::<Decision>(record.body);
            }
            Kind::Operator => {
                let _ = serde_json::from_str::<OperatorAction>(record.body);
            }
            Kind::Other => {}
        }
    }
    let _ = reader.truncated();

    // Write what was understood, read it back: the same records.
    // A header read back may write longer than the reader's limit (numbers
    // written out in full): the writer refuses it, nothing to round-trip.
    let Ok(mut writer) = RecordWriter::new(Vec::new(), &header) else {
        return;
    };
    for (t, _, out) in &outputs {
        writer.output(*t, out).expect("an Output serializes");
    }
    let written = writer.into_inner();
    let (again, reader) = RecordReader::new(&written[..], path).expect("own header reads");
    assert_eq!(again, header, "header round trip");
    let mut reader = reader.validate_all(true);
    for (t, kind, out) in &outputs {
        let record = reader
            .next_record()
            .expect("own record reads")
            .expect("as many records as written");
        assert_eq!(record.t, *t);
        assert_eq!(record.kind, *kind);
        let back: Output = serde_json::from_str(record.body).expect("own record parses");
        assert_eq!(&back, out, "record round trip");
    }
    assert!(reader.next_record().expect("clean end").is_none());
});
