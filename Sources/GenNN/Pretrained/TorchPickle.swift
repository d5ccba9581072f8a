import Foundation

// A restricted unpickler for the pickles inside PyTorch `.pth` files.
//
// It interprets the binary opcodes of pickle protocols 2 to 5 that `torch.save(state_dict)`
// produces and nothing else. It never imports or calls anything: a GLOBAL names one entry of a
// fixed allow-list (``TorchPickleGlobal``) or the whole load is refused with an error that
// names the global; REDUCE / NEWOBJ / BUILD apply only to those allowed callables, and their
// effect is computed here (an ordered dictionary, a tensor *description*). Storage bytes are
// never touched by the unpickler: persistent ids become ``TorchStorageRef`` values that the
// caller resolves.
//
// Reference: CPython `Lib/pickle.py` and `Lib/pickletools.py` (opcode table), PyTorch
// `torch/serialization.py` (`_load`, `_legacy_load`, `persistent_id`) and `torch/_utils.py`
// (`_rebuild_tensor_v2`, `_rebuild_parameter`).

// MARK: - Storage types

/// The element type of a torch storage, as named by the `torch.<Name>Storage` global in a
/// persistent id.
public enum TorchStorageType: String, CaseIterable, Sendable {
    /// `torch.FloatStorage`: float32.
    case float = "FloatStorage"
    /// `torch.DoubleStorage`: float64 (rounded to float32).
    case double = "DoubleStorage"
    /// `torch.HalfStorage`: IEEE half (exact in float32).
    case half = "HalfStorage"
    /// `torch.BFloat16Storage`: bfloat16 (exact in float32).
    case bfloat16 = "BFloat16Storage"
    /// `torch.LongStorage`: int64 (converted to the nearest float32).
    case long = "LongStorage"
    /// `torch.IntStorage`: int32 (converted to the nearest float32).
    case int = "IntStorage"
    /// `torch.ShortStorage`: int16.
    case short = "ShortStorage"
    /// `torch.CharStorage`: int8.
    case char = "CharStorage"
    /// `torch.ByteStorage`: uint8.
    case byte = "ByteStorage"
    /// `torch.BoolStorage`: one byte, 0 → 0.0, anything else → 1.0.
    case bool = "BoolStorage"

    /// Bytes per element.
    public var elementSize: Int {
        switch self {
        case .double, .long: return 8
        case .float, .int: return 4
        case .half, .bfloat16, .short: return 2
        case .char, .byte, .bool: return 1
        }
    }
}

/// A storage named by a persistent id `('storage', torch.<T>Storage, key, location, numel[, view])`.
struct TorchStorageRef {
    /// The storage's key: the zip entry `<prefix>/data/<key>`, or the legacy record key.
    var key: String
    var type: TorchStorageType
    var location: String
    /// Elements of `type` the storage declares.
    var numel: Int
    /// Legacy format only: this storage is a view of `key` starting at element `viewOffset`.
    var viewOffset: Int = 0
}

/// A tensor described by `_rebuild_tensor(_v2)`: where its elements are, not the elements.
struct TorchTensorRef {
    var storage: TorchStorageRef
    var offset: Int
    var shape: [Int]
    var stride: [Int]
}

/// The only globals a `.pth` pickle may name.
enum TorchPickleGlobal: Equatable {
    /// `collections.OrderedDict`.
    case orderedDict
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    case rebuildTensorV2
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)` (files written before torch 0.4).
    case rebuildTensor
    /// `torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`.
    case rebuildParameter
    /// `torch._utils._rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)`.
    case rebuildParameterWithState
    /// `torch.<T>Storage`, usable only inside a persistent id.
    case storageType(TorchStorageType)

    /// The allowed global `module.name`, or `nil`.
    static func lookup(module: String, name: String) -> TorchPickleGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch", _): return TorchStorageType(rawValue: name).map { .storageType($0) }
        default: return nil
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .storageType(let t): return "torch.\(t.rawValue)"
        }
    }
}

// MARK: - Values

/// A tuple's items, boxed so that ``dismantle(_:)`` can empty it: a chain of nested tuples
/// is then freed one level at a time, even while the caller still holds the outermost one.
final class PickleTuple {
    var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
}

/// A mutable list (lists are memoized and then appended to, so they need reference semantics).
final class PickleList {
    var items: [PickleValue] = []
}

/// A mutable dictionary, insertion-ordered; later SETITEMs of an equal key replace the value.
final class PickleDict {
    var pairs: [(key: PickleValue, value: PickleValue)] = []
    var stringIndex: [String: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key {
            if let i = stringIndex[s] { pairs[i].value = value; return }
            stringIndex[s] = pairs.count
        }
        pairs.append((key, value))
    }
}

/// A value built by the unpickler.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits: little-endian two's complement bytes (LONG1/LONG4).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    case global(TorchPickleGlobal)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)

    /// A short name of the value's kind, for error messages.
    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let g): return g.qualifiedName
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// Releases a value graph without recursion (a deeply nested pickle cannot overflow the stack
/// when its values are freed) and breaks reference cycles between lists and dictionaries.
func dismantle(_ roots: [PickleValue]) {
    var work = roots
    var seen = Set<ObjectIdentifier>()
    while let v = work.popLast() {
        switch v {
        case .tuple(let t):
            if seen.insert(ObjectIdentifier(t)).inserted {
                work.append(contentsOf: t.items)
                t.items = []
            }
        case .list(let l):
            if seen.insert(ObjectIdentifier(l)).inserted {
                work.append(contentsOf: l.items)
                l.items = []
            }
        case .dict(let d):
            if seen.insert(ObjectIdentifier(d)).inserted {
                for p in d.pairs { work.append(p.key); work.append(p.value) }
                d.pairs = []
                d.stringIndex = [:]
            }
        default: break
        }
    }
}

// MARK: - Unpickler

/// A failure inside a pickle: the byte offset (within the stream being read) and the reason.
struct PickleFailure: Error {
    enum Reason {
        case forbiddenGlobal(String)
        case unknownOpcode(UInt8)
        case truncated(String)
        case invalid(String)
    }
    let offset: Int
    let reason: Reason
}

/// Interprets one pickle (up to and including its STOP) from `bytes`, starting at `position`.
///
/// `persistentLoad` turns the object of a BINPERSID into a value (for `.pth` files: a
/// ``TorchStorageRef``); it receives the opcode's offset for error messages.
struct RestrictedUnpickler {
    /// Opcodes, named as in CPython's `pickletools`.
    enum Op {
        static let mark: UInt8 = 0x28          // (
        static let stop: UInt8 = 0x2E          // .
        static let pop: UInt8 = 0x30           // 0
        static let popMark: UInt8 = 0x31       // 1
        static let dup: UInt8 = 0x32           // 2
        static let binfloat: UInt8 = 0x47      // G
        static let binint: UInt8 = 0x4A        // J
        static let binint1: UInt8 = 0x4B       // K
        static let binint2: UInt8 = 0x4D       // M
        static let none: UInt8 = 0x4E          // N
        static let binpersid: UInt8 = 0x51     // Q
        static let reduce: UInt8 = 0x52        // R
        static let binstring: UInt8 = 0x54     // T
        static let shortBinstring: UInt8 = 0x55 // U
        static let binunicode: UInt8 = 0x58    // X
        static let binbytes: UInt8 = 0x42      // B
        static let shortBinbytes: UInt8 = 0x43 // C
        static let append: UInt8 = 0x61        // a
        static let build: UInt8 = 0x62         // b
        static let global: UInt8 = 0x63        // c
        static let dict: UInt8 = 0x64          // d
        static let emptyDict: UInt8 = 0x7D     // }
        static let appends: UInt8 = 0x65       // e
        static let binget: UInt8 = 0x68        // h
        static let longBinget: UInt8 = 0x6A    // j
        static let list: UInt8 = 0x6C          // l
        static let emptyList: UInt8 = 0x5D     // ]
        static let binput: UInt8 = 0x71        // q
        static let longBinput: UInt8 = 0x72    // r
        static let setitem: UInt8 = 0x73       // s
        static let tuple: UInt8 = 0x74         // t
        static let emptyTuple: UInt8 = 0x29    // )
        static let setitems: UInt8 = 0x75      // u
        static let proto: UInt8 = 0x80
        static let newobj: UInt8 = 0x81
        static let tuple1: UInt8 = 0x85
        static let tuple2: UInt8 = 0x86
        static let tuple3: UInt8 = 0x87
        static let newtrue: UInt8 = 0x88
        static let newfalse: UInt8 = 0x89
        static let long1: UInt8 = 0x8A
        static let long4: UInt8 = 0x8B
        static let shortBinunicode: UInt8 = 0x8C
        static let binunicode8: UInt8 = 0x8D
        static let binbytes8: UInt8 = 0x8E
        static let stackGlobal: UInt8 = 0x93
        static let memoize: UInt8 = 0x94
        static let frame: UInt8 = 0x95
    }

    /// Names of the opcodes this reader does not interpret, for messages.
    static func opcodeName(_ op: UInt8) -> String? {
        switch op {
        case 0x49: return "INT"
        case 0x4C: return "LONG"
        case 0x46: return "FLOAT"
        case 0x53: return "STRING"
        case 0x56: return "UNICODE"
        case 0x50: return "PERSID"
        case 0x67: return "GET"
        case 0x70: return "PUT"
        case 0x69: return "INST"
        case 0x6F: return "OBJ"
        case 0x82: return "EXT1"
        case 0x83: return "EXT2"
        case 0x84: return "EXT4"
        case 0x8F: return "EMPTY_SET"
        case 0x90: return "ADDITEMS"
        case 0x91: return "FROZENSET"
        case 0x92: return "NEWOBJ_EX"
        case 0x96: return "BYTEARRAY8"
        case 0x97: return "NEXT_BUFFER"
        case 0x98: return "READONLY_BUFFER"
        default: return nil
        }
    }

    private let bytes: UnsafeRawBufferPointer
    /// The offset of the next byte to read; after ``load()``, the first byte after STOP.
    private(set) var position: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var opStart = 0
    private let persistentLoad: (PickleValue, Int) throws -> PickleValue

    init(bytes: UnsafeRawBufferPointer, position: Int = 0,
         persistentLoad: @escaping (PickleValue, Int) throws -> PickleValue) {
        self.bytes = bytes
        self.position = position
        self.persistentLoad = persistentLoad
    }

    // MARK: Reading primitives

    private func fail(_ message: String) -> PickleFailure {
        PickleFailure(offset: opStart, reason: .invalid(message))
    }

    private mutating func take(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - position else {
            throw PickleFailure(offset: opStart, reason: .truncated(
                "\(what) needs \(n) bytes, only \(bytes.count - position) remain"))
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
        position += n
        return slice
    }

    private mutating func u8(_ what: String) throws -> UInt8 { try take(1, what)[0] }

    private mutating func uintLE(_ n: Int, _ what: String) throws -> UInt64 {
        let b = try take(n, what)
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
        return v
    }

    private mutating func length(_ n: Int, _ what: String) throws -> Int {
        let v = try uintLE(n, what)
        guard v <= UInt64(bytes.count - position) else {
            throw PickleFailure(offset: opStart, reason: .truncated(
                "\(what) of \(v) bytes, only \(bytes.count - position) remain"))
        }
        return Int(v)
    }

    private mutating func utf8String(_ n: Int, _ what: String) throws -> String {
        let b = try take(n, what)
        guard let s = Self.validUTF8(b) else { throw fail("\(what) is not valid UTF-8") }
        return s
    }

    /// A Python 2 `str` (BINSTRING): ASCII/UTF-8 kept, other bytes read as Latin-1.
    private mutating func byteString(_ n: Int, _ what: String) throws -> String {
        let b = try take(n, what)
        if let s = Self.validUTF8(b) { return s }
        return String(b.map { Character(Unicode.Scalar($0)) })
    }

    /// A newline-terminated line (GLOBAL's module and name).
    private mutating func line(_ what: String) throws -> String {
        let start = position
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count else {
            throw PickleFailure(offset: opStart, reason: .truncated("\(what) has no terminating newline"))
        }
        position = end + 1
        guard let s = Self.validUTF8(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) else {
            throw fail("\(what) is not valid UTF-8")
        }
        return s
    }

    // MARK: Stack

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        if let m = marks.last, stack.count < m { throw fail("stack underflow past a MARK") }
        return v
    }

    private func top() throws -> PickleValue {
        guard let v = stack.last else { throw fail("stack underflow") }
        if let m = marks.last, stack.count <= m { throw fail("stack underflow past a MARK") }
        return v
    }

    /// The items pushed since the last MARK, which is removed.
    private mutating func popToMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func memoIndex(_ v: UInt64) throws -> Int {
        guard v <= UInt64(Int32.max) else { throw fail("memo index \(v) is out of range") }
        return Int(v)
    }

    private func memoGet(_ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw fail("memo index \(i) was never stored") }
        return v
    }

    // MARK: Interpreter

    /// Interprets opcodes up to STOP and returns the pickled object.
    /// - Throws: ``PickleFailure`` with the offset of the offending opcode.
    ///
    /// The memo keeps references into the result; call ``release(_:)`` with the result when done
    /// with it, so that deep or cyclic values are freed without recursion.
    mutating func load() throws -> PickleValue {
        do {
            return try interpret()
        } catch {
            release(.none)
            throw error
        }
    }

    /// Frees the memo, the stack and `result` (see ``dismantle(_:)``).
    mutating func release(_ result: PickleValue) {
        dismantle([result] + stack + Array(memo.values))
        stack = []
        marks = []
        memo = [:]
    }

    private mutating func interpret() throws -> PickleValue {
        while true {
            opStart = position
            guard position < bytes.count else {
                throw PickleFailure(offset: position, reason: .truncated("the pickle ends before its STOP opcode"))
            }
            let op = bytes[position]
            position += 1
            switch op {
            case Op.proto:
                let v = try u8("PROTO")
                guard v <= 5 else { throw fail("unsupported pickle protocol \(v)") }
            case Op.frame:
                _ = try uintLE(8, "FRAME")
            case Op.stop:
                let v = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("values left on the stack at STOP") }
                return v
            case Op.mark:
                marks.append(stack.count)
            case Op.pop:
                if let m = marks.last, m == stack.count { marks.removeLast() } else { _ = try pop() }
            case Op.popMark:
                _ = try popToMark()
            case Op.dup:
                stack.append(try top())

            case Op.none: stack.append(.none)
            case Op.newtrue: stack.append(.bool(true))
            case Op.newfalse: stack.append(.bool(false))
            case Op.binint:
                stack.append(.int(Int(Int32(bitPattern: UInt32(try uintLE(4, "BININT"))))))
            case Op.binint1: stack.append(.int(Int(try u8("BININT1"))))
            case Op.binint2: stack.append(.int(Int(try uintLE(2, "BININT2"))))
            case Op.long1, Op.long4:
                let n = op == Op.long1 ? Int(try u8("LONG1")) : try length(4, "LONG4")
                let b = Array(try take(n, "LONG"))
                stack.append(Self.integer(littleEndian: b))
            case Op.binfloat:
                let b = try take(8, "BINFLOAT")
                var bits: UInt64 = 0
                for i in 0..<8 { bits = bits << 8 | UInt64(b[i]) }  // big-endian
                stack.append(.float(Double(bitPattern: bits)))

            case Op.binunicode: stack.append(.string(try utf8String(try length(4, "BINUNICODE"), "BINUNICODE")))
            case Op.shortBinunicode: stack.append(.string(try utf8String(Int(try u8("SHORT_BINUNICODE")), "SHORT_BINUNICODE")))
            case Op.binunicode8: stack.append(.string(try utf8String(try length(8, "BINUNICODE8"), "BINUNICODE8")))
            case Op.binstring:
                let n = Int32(bitPattern: UInt32(try uintLE(4, "BINSTRING")))
                guard n >= 0 else { throw fail("BINSTRING has a negative length") }
                stack.append(.string(try byteString(Int(n), "BINSTRING")))
            case Op.shortBinstring: stack.append(.string(try byteString(Int(try u8("SHORT_BINSTRING")), "SHORT_BINSTRING")))
            case Op.binbytes: stack.append(.bytes(Array(try take(try length(4, "BINBYTES"), "BINBYTES"))))
            case Op.shortBinbytes: stack.append(.bytes(Array(try take(Int(try u8("SHORT_BINBYTES")), "SHORT_BINBYTES"))))
            case Op.binbytes8: stack.append(.bytes(Array(try take(try length(8, "BINBYTES8"), "BINBYTES8"))))

            case Op.emptyTuple: stack.append(.tuple(PickleTuple([])))
            case Op.tuple1:
                let a = try pop()
                stack.append(.tuple(PickleTuple([a])))
            case Op.tuple2:
                let b = try pop(), a = try pop()
                stack.append(.tuple(PickleTuple([a, b])))
            case Op.tuple3:
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(.tuple(PickleTuple([a, b, c])))
            case Op.tuple: stack.append(.tuple(PickleTuple(try popToMark())))
            case Op.emptyList: stack.append(.list(PickleList()))
            case Op.list:
                let l = PickleList()
                l.items = try popToMark()
                stack.append(.list(l))
            case Op.emptyDict: stack.append(.dict(PickleDict()))
            case Op.dict:
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
                let d = PickleDict()
                for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
                stack.append(.dict(d))
            case Op.append:
                let v = try pop()
                guard case .list(let l) = try top() else { throw fail("APPEND to a \(try top().kindName), not a list") }
                l.items.append(v)
            case Op.appends:
                let items = try popToMark()
                guard case .list(let l) = try top() else { throw fail("APPENDS to a \(try top().kindName), not a list") }
                l.items.append(contentsOf: items)
            case Op.setitem:
                let v = try pop(), k = try pop()
                guard case .dict(let d) = try top() else { throw fail("SETITEM on a \(try top().kindName), not a dict") }
                d.set(k, v)
            case Op.setitems:
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                guard case .dict(let d) = try top() else { throw fail("SETITEMS on a \(try top().kindName), not a dict") }
                for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }

            case Op.binput: memo[try memoIndex(UInt64(try u8("BINPUT")))] = try top()
            case Op.longBinput: memo[try memoIndex(try uintLE(4, "LONG_BINPUT"))] = try top()
            case Op.memoize: memo[memo.count] = try top()
            case Op.binget: stack.append(try memoGet(Int(try u8("BINGET"))))
            case Op.longBinget: stack.append(try memoGet(try memoIndex(try uintLE(4, "LONG_BINGET"))))

            case Op.global:
                let module = try line("GLOBAL module")
                let name = try line("GLOBAL name")
                stack.append(.global(try resolve(module: module, name: name)))
            case Op.stackGlobal:
                let n = try pop(), m = try pop()
                guard case .string(let module) = m, case .string(let name) = n else {
                    throw fail("STACK_GLOBAL needs two strings, found \(m.kindName) and \(n.kindName)")
                }
                stack.append(.global(try resolve(module: module, name: name)))
            case Op.reduce:
                let args = try pop(), callable = try pop()
                stack.append(try call(callable, args))
            case Op.newobj:
                let args = try pop(), cls = try pop()
                guard case .global(.orderedDict) = cls else {
                    throw fail("NEWOBJ of \(cls.kindName) is not supported (only collections.OrderedDict)")
                }
                stack.append(try call(cls, args))
            case Op.build:
                let state = try pop()
                let target = try top()
                switch target {
                case .dict, .tensor:
                    // An OrderedDict's attributes (state_dict()._metadata) or a tensor's Python
                    // attributes: not needed for the weights, dropped.
                    dismantle([state])
                default:
                    throw fail("BUILD on a \(target.kindName) is not supported")
                }
            case Op.binpersid:
                let pid = try pop()
                stack.append(try persistentLoad(pid, opStart))

            default:
                if let name = Self.opcodeName(op) {
                    throw fail("opcode \(name) (0x\(String(op, radix: 16))) is not supported in a state_dict pickle")
                }
                throw PickleFailure(offset: opStart, reason: .unknownOpcode(op))
            }
        }
    }

    private func resolve(module: String, name: String) throws -> TorchPickleGlobal {
        guard let g = TorchPickleGlobal.lookup(module: module, name: name) else {
            throw PickleFailure(offset: opStart, reason: .forbiddenGlobal("\(module).\(name)"))
        }
        return g
    }

    /// `b` as a String when it is well-formed UTF-8 (decoding would repair it otherwise).
    static func validUTF8(_ b: UnsafeRawBufferPointer) -> String? {
        let s = String(decoding: b, as: UTF8.self)
        return s.utf8.elementsEqual(b) ? s : nil
    }

    static func integer(littleEndian b: [UInt8]) -> PickleValue {
        if b.isEmpty { return .int(0) }
        if b.count > 8 { return .bigInt(b) }
        var v: UInt64 = 0
        for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
        if b.count < 8, b[b.count - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(b.count)) }  // sign-extend
        return .int(Int(Int64(bitPattern: v)))
    }

    // MARK: The allowed callables

    private func call(_ callable: PickleValue, _ argsValue: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable else {
            throw fail("REDUCE calls a \(callable.kindName), which is not callable here")
        }
        guard case .tuple(let argsBox) = argsValue else {
            throw fail("\(g.qualifiedName) called with \(argsValue.kindName) arguments, not a tuple")
        }
        let args = argsBox.items
        switch g {
        case .orderedDict:
            let d = PickleDict()
            if args.count == 1 {
                let items: [PickleValue]
                switch args[0] {
                case .list(let l): items = l.items
                case .tuple(let t): items = t.items
                case .dict(let src): for p in src.pairs { d.set(p.key, p.value) }; return .dict(d)
                default: throw fail("collections.OrderedDict called with a \(args[0].kindName)")
                }
                for item in items {
                    switch item {
                    case .tuple(let kv) where kv.items.count == 2: d.set(kv.items[0], kv.items[1])
                    case .list(let kv) where kv.items.count == 2: d.set(kv.items[0], kv.items[1])
                    default: throw fail("collections.OrderedDict item is not a (key, value) pair")
                    }
                }
            } else if !args.isEmpty {
                throw fail("collections.OrderedDict called with \(args.count) arguments")
            }
            return .dict(d)
        case .rebuildTensorV2, .rebuildTensor:
            let expected = g == .rebuildTensor ? [4] : [6, 7]
            guard expected.contains(args.count) else {
                throw fail("\(g.qualifiedName) called with \(args.count) arguments, expected \(expected.map(String.init).joined(separator: " or "))")
            }
            guard case .storage(let storage) = args[0] else {
                throw fail("\(g.qualifiedName): argument 1 is a \(args[0].kindName), not a storage")
            }
            guard case .int(let offset) = args[1] else {
                throw fail("\(g.qualifiedName): storage offset is a \(args[1].kindName), not an int")
            }
            let shape = try intTuple(args[2], "\(g.qualifiedName): size")
            let stride = try intTuple(args[3], "\(g.qualifiedName): stride")
            guard shape.count == stride.count else {
                throw fail("\(g.qualifiedName): size \(shape) and stride \(stride) have different lengths")
            }
            return .tensor(TorchTensorRef(storage: storage, offset: offset, shape: shape, stride: stride))
        case .rebuildParameter, .rebuildParameterWithState:
            guard args.count == (g == .rebuildParameter ? 3 : 4) else {
                throw fail("\(g.qualifiedName) called with \(args.count) arguments")
            }
            guard case .tensor = args[0] else {
                throw fail("\(g.qualifiedName): data is a \(args[0].kindName), not a tensor")
            }
            return args[0]
        case .storageType(let t):
            throw fail("torch.\(t.rawValue) may appear only in a persistent id, not be called")
        }
    }

    private func intTuple(_ v: PickleValue, _ what: String) throws -> [Int] {
        let items: [PickleValue]
        switch v {
        case .tuple(let t): items = t.items
        case .list(let l): items = l.items
        default: throw fail("\(what) is a \(v.kindName), not a tuple")
        }
        return try items.map {
            guard case .int(let i) = $0 else { throw fail("\(what) holds a \($0.kindName), not an int") }
            return i
        }
    }
}
