#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portask_kafka::fuzzing::decode_request(data));
