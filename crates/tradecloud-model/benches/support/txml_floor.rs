//! The tXML floor: what reading the bytes at all costs, shared by the decode bench and the
//! instruction-count example.

/// Every event of the document, as the decoder's reader is configured (no trimming), with the
/// text decoded the way the decoder decodes it.
pub fn quick_xml_scan(body: &[u8]) -> usize {
    let text = std::str::from_utf8(body).expect("UTF-8");
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut events = 0usize;
    loop {
        match reader.read_event().expect("well-formed") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Text(t) => {
                events += t.xml10_content().len();
            }
            _ => events += 1,
        }
    }
    events
}
