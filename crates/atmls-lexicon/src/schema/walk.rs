//! Finding every reference in a document, with its path.

use super::types::*;
use super::{LexiconDoc, Reference};

/// How a reference is used, which decides what it may point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefUse {
    /// The target of a `ref`: any data type or a record, not a token or an endpoint.
    Ref,
    /// A variant of a `union`: an `object` or a `record`.
    UnionVariant,
}

impl LexiconDoc {
    /// Every reference in the document, with the path of the `ref` schema or union entry
    /// it appears at, in definition order.
    pub fn references(&self) -> Vec<(String, &Reference, RefUse)> {
        let mut out = Vec::new();
        for (name, def) in &self.defs {
            let path = format!("{}#{name}", self.id);
            match def {
                Def::Record(r) => object(&r.record, &format!("{path}.record"), &mut out),
                Def::Query(q) => {
                    params(q.parameters.as_ref(), &path, &mut out);
                    body(q.output.as_ref(), &format!("{path}.output"), &mut out);
                }
                Def::Procedure(p) => {
                    params(p.parameters.as_ref(), &path, &mut out);
                    body(p.input.as_ref(), &format!("{path}.input"), &mut out);
                    body(p.output.as_ref(), &format!("{path}.output"), &mut out);
                }
                Def::Subscription(s) => {
                    params(s.parameters.as_ref(), &path, &mut out);
                    union(
                        &s.message.schema,
                        &format!("{path}.message.schema"),
                        &mut out,
                    );
                }
                Def::Field(f) => field(f, &path, &mut out),
                Def::PermissionSet(_) | Def::Token(_) => {}
            }
        }
        out
    }
}

type Found<'a> = Vec<(String, &'a Reference, RefUse)>;

fn field<'a>(f: &'a FieldSchema, path: &str, out: &mut Found<'a>) {
    match f {
        FieldSchema::Array(a) => field(&a.items, &format!("{path}.items"), out),
        FieldSchema::Object(o) => object(o, path, out),
        FieldSchema::Ref(r) => out.push((path.to_owned(), &r.target, RefUse::Ref)),
        FieldSchema::Union(u) => union(u, path, out),
        _ => {}
    }
}

fn object<'a>(o: &'a ObjectSchema, path: &str, out: &mut Found<'a>) {
    for (name, f) in &o.properties {
        field(f, &format!("{path}.properties.{name}"), out);
    }
}

fn union<'a>(u: &'a UnionSchema, path: &str, out: &mut Found<'a>) {
    for (i, r) in u.refs.iter().enumerate() {
        out.push((format!("{path}.refs[{i}]"), r, RefUse::UnionVariant));
    }
}

fn params<'a>(p: Option<&'a ParamsSchema>, path: &str, out: &mut Found<'a>) {
    for (name, f) in p.iter().flat_map(|p| &p.properties) {
        field(f, &format!("{path}.parameters.properties.{name}"), out);
    }
}

fn body<'a>(b: Option<&'a Body>, path: &str, out: &mut Found<'a>) {
    if let Some(schema) = b.and_then(|b| b.schema.as_ref()) {
        field(schema, &format!("{path}.schema"), out);
    }
}
