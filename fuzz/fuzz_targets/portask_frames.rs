#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portask_protocol::fuzzing::decode_frames(data));
