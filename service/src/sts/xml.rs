//! The query protocol's XML documents: `<ActionResponse>` with its `<ActionResult>` and request id,
//! and `<ErrorResponse>`. Every text value is escaped here.

use crate::protocol::AwsError;

/// STS's XML namespace (API version 2011-06-15).
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Escape text for an XML element (quotes need no escape in element text).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>text</name>`, escaped.
pub fn element(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", escape(text))
}

/// `<name>children</name>` around already-built elements.
pub fn parent(name: &str, children: &[String]) -> String {
    format!("<{name}>{}</{name}>", children.concat())
}

/// The success document of `action` with its result elements.
pub fn response(action: &str, result: &[String], request_id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>{}</{action}Result>\n  <ResponseMetadata>{}</ResponseMetadata>\n</{action}Response>\n",
        result.concat(),
        element("RequestId", request_id)
    )
}

/// The error document.
pub fn error(err: &AwsError, request_id: &str) -> String {
    // `Sender` for the caller's faults, `Receiver` for the service's.
    let fault = if err.is_server_fault() {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>{}{}{}</Error>\n  {}\n</ErrorResponse>\n",
        element("Type", fault),
        element("Code", err.code),
        element("Message", err.message_text()),
        element("RequestId", request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_documents_are_shaped() {
        assert_eq!(element("A", "x<&>\"'"), "<A>x&lt;&amp;&gt;\"'</A>");
        let doc = response("GetCallerIdentity", &[element("Account", "1")], "r-1");
        assert!(doc.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(
            doc.contains("<GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult>")
        );
        assert!(doc.contains("<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"));
        let err = error(
            &super::super::error::StsError::AccessDenied("no <way>".into()).into(),
            "r-2",
        );
        assert!(err.contains("<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no &lt;way&gt;</Message></Error>"));
        assert!(err.contains("<RequestId>r-2</RequestId>"));
    }
}
