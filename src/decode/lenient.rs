//! Lenient JSON readers for nested objects whose shape AWS varies: a field of an unexpected type
//! reads as absent instead of failing the whole record (the raw JSON is kept elsewhere anyway).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON scalar read as text: strings as they are, booleans and numbers in their JSON spelling,
/// null, objects and arrays as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn into_inner(self) -> Option<Cow<'a, str>> {
        self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

/// A string that borrows from the input unless it has escapes (serde's own `Cow<str>` always
/// copies: one allocation per key of every record).
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CowStrVisitor)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = CowStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v)))
    }
}

/// A nested object read in the same pass as its parent, or `T::default()` when the value is not
/// an object: one scan of the text instead of capturing it raw and parsing it again.
#[derive(Debug, Default)]
pub struct Lenient<T>(pub T);

impl<'de, T: serde::Deserialize<'de> + Default> serde::Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<T: Default> LenientVisitor<T> {
    fn absent<E>(self) -> Result<Lenient<T>, E> {
        Ok(Lenient(T::default()))
    }
}

impl<'de, T: serde::Deserialize<'de> + Default> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Lenient)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.absent()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.absent()
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.absent()
    }
}

/// Reads `T` from raw JSON text, or `T::default()` when the text has another shape.
pub fn read_or_default<'a, T: serde::Deserialize<'a> + Default>(raw: &'a str) -> T {
    serde_json::from_str(raw).unwrap_or_default()
}

/// Decodes a JSON string literal (`"..."`), borrowing when it has no escapes.
pub fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// True when a JSON text nests objects/arrays deeper than `limit`: such values are refused at
/// ingest so that no later reader (SQL JSON functions, Spark) has to recurse that deep.
pub fn nests_deeper_than(raw: &str, limit: usize) -> bool {
    // Fast path: nesting needs an opening bracket per level. Counted in byte lanes a block of
    // at most 255 bytes at a time, the count vectorises to 16 bytes an instruction; counting
    // into a usize did 2 (BENCHMARKS.md, "JSON nesting check").
    let openings: usize = raw
        .as_bytes()
        .chunks(255)
        .map(|block| {
            let count = block.iter().fold(0u8, |count, &b| {
                count.wrapping_add(u8::from(b == b'{') + u8::from(b == b'['))
            });
            usize::from(count)
        })
        .sum();
    if openings <= limit {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in raw.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The top-level fields of a JSON object, in order, values unparsed; None when `raw` is not an
/// object.
pub fn object_fields(raw: &str) -> Option<Vec<(Cow<'_, str>, &serde_json::value::RawValue)>> {
    serde_json::from_str::<ObjectFields>(raw)
        .ok()
        .map(|fields| fields.0)
}

struct ObjectFields<'a>(Vec<(Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for ObjectFields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = ObjectFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
                    fields.push((key, map.next_value()?));
                }
                Ok(ObjectFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_accepts_any_scalar() {
        let cases = [
            (r#""abc""#, Some("abc")),
            ("true", Some("true")),
            ("12", Some("12")),
            ("null", None),
            (r#"{"a":1}"#, None),
            ("[1,2]", None),
        ];
        for (raw, expected) in cases {
            let text: Text = serde_json::from_str(raw).unwrap();
            assert_eq!(text.get(), expected, "{raw}");
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        assert!(matches!(
            json_string(r#""plain""#),
            Some(Cow::Borrowed("plain"))
        ));
        assert_eq!(json_string(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert_eq!(json_string("12"), None);
    }

    #[test]
    fn nesting_depth() {
        assert!(!nests_deeper_than(r#"{"a":[{"b":"[[[["}]}"#, 3));
        assert!(nests_deeper_than(r#"{"a":[{"b":[1]}]}"#, 3));
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(nests_deeper_than(&deep, 64));
    }
}
