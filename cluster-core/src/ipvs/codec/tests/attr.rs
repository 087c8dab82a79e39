//! The attribute writer and reader.

use super::*;

#[test]
fn attribute_writer_pads_and_nests() {
    let mut w = AttrWriter::new();
    assert!(w.is_empty());
    w.put_u8(1, 0xab);
    w.nest(2, |w| {
        w.put_str(3, "abcd");
        w.nest(4, |w| w.put_u16(5, 0x0102));
    });
    assert_eq!(w.len(), 36);
    assert_eq!(
        w.finish(),
        [
            0x05, 0x00, 0x01, 0x00, 0xab, 0x00, 0x00, 0x00, // u8 + 3 pad
            0x1c, 0x00, 0x02, 0x80, // nest, 28 bytes
            0x09, 0x00, 0x03, 0x00, b'a', b'b', b'c', b'd', 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00,
            0x04, 0x80, // inner nest, 12 bytes
            0x06, 0x00, 0x05, 0x00, 0x02, 0x01, 0x00, 0x00,
        ]
    );
    // The reader masks NLA_F_NESTED off the type and tolerates a missing final pad.
    let buf = [0x05, 0x00, 0x01, 0x80, 0xab];
    assert_eq!(attrs(&buf, "t").next().unwrap().unwrap(), (1, &[0xab][..]));
}
