import Testing
@testable import RESP

@Suite("HashSlot and KeyHasher")
struct HashSlotTests {
    @Test func knownVectors() {
        #expect(HashSlot(key: "foo").rawValue == 12182)
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "{user1000}.followers"))
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        #expect(HashSlot(key: "foo{}{bar}").rawValue == HashSlot.crc16(Array("foo{}{bar}".utf8)) & 0x3FFF)
        #expect(HashSlot(key: "foo{{bar}}zap") == HashSlot(key: "{bar"))
        #expect(HashSlot(key: "foo{bar") == HashSlot(rawValue: HashSlot.crc16(Array("foo{bar".utf8)) & 0x3FFF))
        #expect(HashSlot(key: "").rawValue == 0)
        #expect(HashSlot(key: "x").rawValue == 16287)  // CLUSTER KEYSLOT x on a live node
    }

    @Test func rawValueRange() {
        #expect(HashSlot(rawValue: 16383) != nil)
        #expect(HashSlot(rawValue: 16384) == nil)
        #expect(HashSlot.count == 16384)
        #expect(HashSlot(rawValue: 1)! < HashSlot(rawValue: 2)!)
        #expect(HashSlot(rawValue: 42)!.description == "42")
    }

    /// Braces often; no braces (long runs through the word-wise search and the two-byte CRC steps);
    /// rarely a brace, so that it often comes late. The one-pass slot of the whole key agrees too.
    @Test(arguments: ["ab{}{x}yz", "abcdefgh", "abcdefghijklmnopqrstuvwxyz0123456789{}"])
    func streamingMatchesWholeKeyForAnyChunking(_ letters: String) {
        var generator = SeededGenerator(seed: 7)
        let alphabet = Array(letters.utf8)
        for _ in 0..<500 {
            let length = Int.random(in: 0...40, using: &generator)
            let key = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            let expected = HashSlot(key: key)
            // Every split into two, plus one random chunking.
            for split in 0...key.count {
                var hasher = KeyHasher()
                key[..<split].withUnsafeBytes { hasher.update($0) }
                key[split...].withUnsafeBytes { hasher.update($0) }
                #expect(hasher.slot == expected)
            }
            var hasher = KeyHasher()
            var start = 0
            while start < key.count {
                let end = min(key.count, start + Int.random(in: 1...4, using: &generator))
                key[start..<end].withUnsafeBytes { hasher.update($0) }
                start = end
            }
            #expect(hasher.slot == expected)
            key.withUnsafeBytes { #expect(KeyHasher.slot(ofWholeKey: $0) == expected) }
        }
    }

    @Test func hashTagRuleMatchesReferenceImplementation() {
        // A direct transcription of the rule (first '{', first '}' after it, non-empty) as a check.
        func reference(_ key: [UInt8]) -> UInt16 {
            guard let open = key.firstIndex(of: UInt8(ascii: "{")),
                  let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
            else { return HashSlot.crc16(key) & 0x3FFF }
            return HashSlot.crc16(key[(open + 1)..<close]) & 0x3FFF
        }
        var generator = SeededGenerator(seed: 99)
        let alphabet = Array("{}ab".utf8)
        for _ in 0..<2000 {
            let key = (0..<Int.random(in: 0...10, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            #expect(HashSlot(key: key).rawValue == reference(key))
            key.withUnsafeBytes { #expect(KeyHasher.slot(ofWholeKey: $0).rawValue == reference(key)) }
        }
    }

    /// The literal tables are what the polynomial gives: bit by bit for one byte, and one byte then
    /// a zero byte for the pair table.
    @Test func literalTablesMatchThePolynomial() {
        func bitwise(_ crc: UInt16, _ byte: UInt8) -> UInt16 {
            var crc = crc ^ UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1 }
            return crc
        }
        #expect(crc16Table.count == 256 && crc16PairTable.count == 256)
        for value in 0...255 {
            #expect(crc16Table[value] == bitwise(0, UInt8(value)), "table[\(value)]")
            #expect(crc16PairTable[value] == bitwise(bitwise(0, UInt8(value)), 0), "pair[\(value)]")
        }
    }
}
