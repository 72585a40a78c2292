//! [`XmlElement`] tree → `serde_json::Value`, by the rules in the module documentation.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{XSI_NAMESPACE, XmlElement, XmlError, XmlErrorKind, XmlLimits, parse_document};

/// Parses a request body whose root element must be `expected_root` (local name) and returns the root's
/// children as a JSON object, ready for the same mapping as a JSON body.
pub fn parse_xml(bytes: &[u8], expected_root: &str, limits: &XmlLimits) -> Result<Value, XmlError> {
    let root = parse_document(bytes, limits)?;
    if root.name != expected_root {
        let kind = XmlErrorKind::WrongRoot {
            expected: expected_root.to_owned(),
            found: root.name.clone(),
        };
        return Err(XmlError::at(kind, root.position));
    }
    check_attributes(&root, "")?;
    if root.is_nil() {
        return Err(XmlError::at(
            XmlErrorKind::NilWithContent {
                path: String::new(),
            },
            root.position,
        ));
    }
    if root.children.is_empty() && !root.text.trim().is_empty() {
        return Err(XmlError::at(
            XmlErrorKind::MixedContent {
                path: String::new(),
            },
            root.position,
        ));
    }
    object_of(&root, "")
}

/// The value of one element: `null`, a string, or an object of its children.
fn value_of(element: &XmlElement, path: &str) -> Result<Value, XmlError> {
    check_attributes(element, path)?;
    if element.is_nil() {
        if !element.children.is_empty() || !element.text.is_empty() {
            return Err(XmlError::at(
                XmlErrorKind::NilWithContent {
                    path: path.to_owned(),
                },
                element.position,
            ));
        }
        return Ok(Value::Null);
    }
    if element.children.is_empty() {
        return Ok(Value::String(element.text.clone()));
    }
    object_of(element, path)
}

/// An object keyed by child names; names that repeat become arrays in document order.
fn object_of(element: &XmlElement, path: &str) -> Result<Value, XmlError> {
    if !element.text.trim().is_empty() {
        return Err(XmlError::at(
            XmlErrorKind::MixedContent {
                path: path.to_owned(),
            },
            element.position,
        ));
    }
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    for child in &element.children {
        *occurrences.entry(child.name.as_str()).or_default() += 1;
    }
    let mut object = Map::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for child in &element.children {
        let name = child.name.as_str();
        let index = seen.entry(name).or_default();
        let child_path = if occurrences[name] > 1 {
            format!("{path}/{}/{index}", escape_pointer(name))
        } else {
            format!("{path}/{}", escape_pointer(name))
        };
        *index += 1;
        let value = value_of(child, &child_path)?;
        if occurrences[name] > 1 {
            match object
                .entry(name.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(items) => items.push(value),
                // Only this loop inserts repeated names, always as arrays.
                other => *other = Value::Array(vec![other.take(), value]),
            }
        } else {
            object.insert(name.to_owned(), value);
        }
    }
    Ok(Value::Object(object))
}

/// Refuses attributes other than `xsi:nil` and schema-location hints (namespace declarations are not
/// attributes in the tree).
fn check_attributes(element: &XmlElement, path: &str) -> Result<(), XmlError> {
    for attr in &element.attributes {
        let allowed = attr.namespace.as_deref() == Some(XSI_NAMESPACE)
            && matches!(
                attr.name.as_str(),
                "nil" | "schemaLocation" | "noNamespaceSchemaLocation"
            );
        if !allowed {
            let kind = XmlErrorKind::AttributeNotAllowed {
                path: path.to_owned(),
                attribute: attr.name.clone(),
            };
            return Err(XmlError::at(kind, element.position));
        }
    }
    Ok(())
}

/// RFC 6901 escaping. XML names cannot contain `/` or `~`, but the pointer must be right regardless.
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Value, XmlError> {
        parse_xml(xml.as_bytes(), "r", &XmlLimits::default())
    }

    #[test]
    fn nil_becomes_null_and_empty_becomes_empty_string() {
        let xml = r#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a xsi:nil="true"/><b/></r>"#;
        assert_eq!(parse(xml).unwrap(), serde_json::json!({"a": null, "b": ""}));
    }

    #[test]
    fn pointer_of_a_repeated_element_has_its_index() {
        let err = parse("<r><i>1</i><i x=\"1\">2</i></r>").unwrap_err();
        assert_eq!(err.pointer(), Some("/i/1"));
        assert!(err.is_content_error());
    }

    #[test]
    fn nil_with_content_is_refused() {
        let xml = r#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a xsi:nil="true">x</a></r>"#;
        assert_eq!(parse(xml).unwrap_err().code(), "xml_nil_with_content");
    }
}
