//! Replays the committed fuzz seed corpus through the fuzz target's body on stable, and
//! checks every seed is a valid request that round-trips.

use std::path::Path;

use bytes::BytesMut;
use portask_kafka::frame::FrameDecoder;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kafka_request");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_replays_without_failures() {
    let files = corpus();
    assert!(files.len() >= 30, "corpus has {} files", files.len());
    for (_, data) in &files {
        portask_kafka::fuzzing::decode_request(data);
    }
}

#[test]
fn every_seed_is_a_valid_request() {
    for (name, data) in corpus() {
        let mut buf = BytesMut::from(&data[..]);
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "{name}");
        let req = portask_kafka::decode_request(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(req.body.api_key().name(), name.split('-').next().unwrap());
    }
}
