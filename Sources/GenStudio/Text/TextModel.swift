import Foundation
import GenTensor
import GenNN

/// Hyperparameters of a character-level language model. Stored as JSON in checkpoints.
public struct TextModelConfig: Codable, Equatable {
    /// Number of symbols (Unicode scalars) in the vocabulary, ≥ 1.
    public var vocabularySize: Int
    /// Stacked LSTM layers, ≥ 1 (book: 1).
    public var layers: Int
    /// Hidden units per LSTM layer, ≥ 1 (book: 128).
    public var units: Int
    /// Dropout probability between LSTM layers during training, in [0, 1) (char-rnn's `dropout`).
    public var dropout: Float
    /// Training window length in characters (book: 60).
    public var sequenceLength: Int
    /// `last`: predict the character after each window (the book's model); `all`: predict the next
    /// character at every position of the window (char-rnn).
    public var targets: TextTargets

    /// The book's model by default (one LSTM of 128 units over windows of 60, no dropout).
    /// - Parameters: as the properties; `vocabularySize` is the corpus's distinct characters.
    public init(vocabularySize: Int, layers: Int = 1, units: Int = 128, dropout: Float = 0,
                sequenceLength: Int = 60, targets: TextTargets = .last) {
        self.vocabularySize = vocabularySize
        self.layers = layers
        self.units = units
        self.dropout = dropout
        self.sequenceLength = sequenceLength
        self.targets = targets
    }
}

/// Which positions of a training window carry a loss.
public enum TextTargets: String, Codable, CaseIterable {
    /// Only the character following the window (F. Chollet, *Deep Learning with Python*, §8.1).
    case last
    /// The next character at every position (A. Karpathy, char-rnn).
    case all
}

/// A character-level LSTM language model: one-hot input (as a row gather), `layers` stacked LSTMs
/// with dropout between them, and a Dense layer producing logits over the vocabulary.
public final class TextModel {
    /// The configuration the model was built from.
    public let config: TextModelConfig
    /// LSTM stack; layer 0 reads token ids directly.
    public let lstms: [LSTM]
    /// Output projection `[units, vocabularySize]`.
    public let output: Dense

    /// Builds a freshly initialised model (Keras initialisers) from `rng`.
    public init(config: TextModelConfig, using rng: inout RandomGenerator) {
        self.config = config
        var l: [LSTM] = []
        for i in 0..<config.layers {
            l.append(LSTM(inputSize: i == 0 ? config.vocabularySize : config.units, units: config.units,
                          name: "lstm_\(i)", using: &rng))
        }
        lstms = l
        output = Dense(inputSize: config.units, units: config.vocabularySize, name: "dense", using: &rng)
    }

    /// All trainable parameters, in a fixed order (LSTM layers, then the output layer).
    public var parameters: [Tensor] { lstms.flatMap(\.parameters) + output.parameters }

    /// Logits for a batch of windows.
    ///
    /// - Parameters:
    ///   - tokens: `[batch, sequenceLength]` row-major token ids.
    ///   - training: applies dropout between layers when true.
    ///   - positions: which positions get logits; nil uses the model's training targets. Validation
    ///     asks for `.last` whatever the training targets, so that every model is scored on the same
    ///     task: the next character given the whole window before it.
    /// - Returns: `[batch, vocabularySize]` logits for the next character (`last`), or
    ///   `[batch·sequenceLength, vocabularySize]` for every position (`all`), row `b·T + t`.
    public func logits(tokens: [Int32], batch: Int, training: Bool, rng: inout RandomGenerator,
                       positions: TextTargets? = nil) -> Tensor {
        let steps = tokens.count / max(batch, 1)
        var result = lstms[0](tokens: tokens, batch: batch, steps: steps)
        for layer in lstms.dropFirst() {
            var x = result.outputs
            if training && config.dropout > 0 { x = dropout(x, rate: config.dropout, rng: &rng) }
            result = layer(x)
        }
        switch positions ?? config.targets {
        case .last:
            var h = result.finalHidden
            if training && config.dropout > 0 && config.layers > 1 { h = dropout(h, rate: config.dropout, rng: &rng) }
            return output(h)
        case .all:
            var x = result.outputs.reshaped([batch * steps, config.units])
            if training && config.dropout > 0 && config.layers > 1 { x = dropout(x, rate: config.dropout, rng: &rng) }
            return output(x)
        }
    }

    /// Inverted dropout (Srivastava et al., 2014): zeroes each element with probability `rate` and
    /// scales the survivors by 1/(1−rate).
    func dropout(_ x: Tensor, rate: Float, rng: inout RandomGenerator) -> Tensor {
        let mask = Tensor(zeros: x.shape)
        let scale = 1 / (1 - rate)
        let m = mask.storage.base
        for i in 0..<mask.count { m[i] = rng.nextUniform() >= rate ? scale : 0 }
        return x * mask
    }
}
