//! A descriptor set made for the tests: one service with a request holding every kind of
//! field (the real APIs have no bytes, floats or signed integers yet), a list response,
//! a streaming RPC, and a second service sharing an RPC name.

#![allow(dead_code)]

use clap::ArgMatches;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
use serde_json::json;
use tenantry_cli::{Catalog, ServiceGroup, commands, request};

/// `tenantry.demo.v1` beside the real APIs (for `google.protobuf.Timestamp`).
pub fn pool() -> DescriptorPool {
    let mut pool = DescriptorPool::decode(tenantry_proto::FILE_DESCRIPTOR_SET).unwrap();
    let field = |name: &str, number: i32, kind: &str| json!({"name": name, "number": number, "label": "LABEL_OPTIONAL", "type": kind});
    let typed = |name: &str, number: i32, kind: &str, type_name: &str| {
        json!({"name": name, "number": number, "label": "LABEL_OPTIONAL", "type": kind,
               "typeName": type_name})
    };
    let repeated = |mut f: serde_json::Value| {
        f["label"] = json!("LABEL_REPEATED");
        f
    };
    let in_oneof = |mut f: serde_json::Value| {
        f["oneofIndex"] = json!(0);
        f
    };
    let file = json!({
        "name": "tenantry/demo/v1/demo.proto",
        "package": "tenantry.demo.v1",
        "dependency": ["google/protobuf/timestamp.proto"],
        "syntax": "proto3",
        "enumType": [{"name": "Color", "value": [
            {"name": "COLOR_UNSPECIFIED", "number": 0},
            {"name": "COLOR_RED", "number": 1},
            {"name": "COLOR_DARK_BLUE", "number": 2}]}],
        "messageType": [
            {"name": "Everything",
             "field": [
                field("count", 1, "TYPE_INT32"),
                field("big", 2, "TYPE_INT64"),
                field("small", 3, "TYPE_UINT32"),
                field("huge", 4, "TYPE_UINT64"),
                field("signed", 5, "TYPE_SINT32"),
                field("ratio", 6, "TYPE_DOUBLE"),
                field("weight", 7, "TYPE_FLOAT"),
                field("enabled", 8, "TYPE_BOOL"),
                field("display_name", 9, "TYPE_STRING"),
                field("blob", 10, "TYPE_BYTES"),
                typed("color", 11, "TYPE_ENUM", ".tenantry.demo.v1.Color"),
                typed("inner", 12, "TYPE_MESSAGE", ".tenantry.demo.v1.Inner"),
                repeated(typed("scores", 13, "TYPE_MESSAGE",
                               ".tenantry.demo.v1.Everything.ScoresEntry")),
                repeated(field("tags", 14, "TYPE_STRING")),
                repeated(typed("items", 15, "TYPE_MESSAGE", ".tenantry.demo.v1.Inner")),
                typed("at", 16, "TYPE_MESSAGE", ".google.protobuf.Timestamp"),
                repeated(typed("colors", 17, "TYPE_ENUM", ".tenantry.demo.v1.Color")),
                field("token", 18, "TYPE_STRING"),
                in_oneof(field("left", 19, "TYPE_STRING")),
                in_oneof(field("right", 20, "TYPE_STRING")),
                repeated(field("sizes", 21, "TYPE_INT32"))],
             "oneofDecl": [{"name": "side"}],
             "nestedType": [{"name": "ScoresEntry",
                             "field": [field("key", 1, "TYPE_STRING"),
                                       field("value", 2, "TYPE_INT32")],
                             "options": {"mapEntry": true}}]},
            {"name": "Inner", "field": [field("label", 1, "TYPE_STRING"),
                                        field("size", 2, "TYPE_INT32")]},
            {"name": "ListResponse",
             "field": [repeated(typed("items", 1, "TYPE_MESSAGE", ".tenantry.demo.v1.Inner")),
                       field("next_page_token", 2, "TYPE_STRING")]},
        ],
        "service": [
            {"name": "DemoService", "method": [
                {"name": "DoEverything", "inputType": ".tenantry.demo.v1.Everything",
                 "outputType": ".tenantry.demo.v1.Everything"},
                {"name": "List", "inputType": ".tenantry.demo.v1.Everything",
                 "outputType": ".tenantry.demo.v1.ListResponse"},
                {"name": "Watch", "inputType": ".tenantry.demo.v1.Everything",
                 "outputType": ".tenantry.demo.v1.Everything", "serverStreaming": true}]},
            {"name": "OtherService", "method": [
                {"name": "List", "inputType": ".tenantry.demo.v1.Everything",
                 "outputType": ".tenantry.demo.v1.ListResponse"}]},
        ],
        "sourceCodeInfo": {"location": [
            {"path": [2], "span": [0, 0, 0], "leadingComments": " The demo service: every kind of field.\n\n More about it.\n"},
            {"path": [4, 0, 2, 0], "span": [0, 0, 0], "leadingComments": " How many, at most 10.\n"},
            {"path": [6, 0, 2, 0], "span": [0, 0, 0], "leadingComments": " member: does everything at once\n"},
        ]},
    });
    let descriptor = prost_types::FileDescriptorProto::default().descriptor();
    let file: prost_types::FileDescriptorProto = DynamicMessage::deserialize(descriptor, file)
        .unwrap()
        .transcode_to()
        .unwrap();
    pool.add_file_descriptor_proto(file).unwrap();
    pool
}

pub fn catalog() -> Catalog {
    Catalog::from_pool(&pool())
}

pub fn demo() -> ServiceGroup {
    catalog().service("demo").unwrap().clone()
}

/// `tenantry demo <args…>`, parsed: the RPC command's matches, or clap's error.
pub fn parse(args: &[&str]) -> Result<(String, ArgMatches), clap::Error> {
    let service = demo();
    let matches = commands::service_command(&service)
        .try_get_matches_from(std::iter::once("demo").chain(args.iter().copied()))?;
    let (name, sub) = matches.subcommand().unwrap();
    Ok((name.to_owned(), sub.clone()))
}

/// The request `tenantry demo do-everything <args…>` sends.
pub fn request(args: &[&str]) -> Result<DynamicMessage, request::RequestError> {
    let mut all = vec!["do-everything"];
    all.extend_from_slice(args);
    let (_, matches) = parse(&all).unwrap_or_else(|e| panic!("{e}"));
    let service = demo();
    request::build(
        &service.rpc("do-everything").unwrap().method.input(),
        &matches,
    )
}

/// A request as proto3 JSON (what the server would receive, readable).
pub fn json_of(message: &DynamicMessage) -> serde_json::Value {
    message
        .serialize_with_options(
            serde_json::value::Serializer,
            &prost_reflect::SerializeOptions::new(),
        )
        .unwrap()
}
