//! A protobuf message inside a serde struct (the read model's JSON state): its encoding, in
//! base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer, M: prost::Message>(message: &M, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(message.encode_to_vec()))
}

pub fn deserialize<'de, D: Deserializer<'de>, M: prost::Message + Default>(
    d: D,
) -> Result<M, D::Error> {
    let text = String::deserialize(d)?;
    let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
    M::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
}
