// A model's chat format: which of the common templates `tokenizer.chat_template` is (recognised by the
// strings each family's Jinja text must contain, as llama.cpp's `llm_chat_detect_template` does, without
// running Jinja), and the prompt text a list of messages renders to in that family.
import Foundation

public enum ChatTemplate: String, Sendable, CaseIterable, Equatable {
    case chatml, llama2, llama3, mistral, zephyr, phi3, gemma

    /// The family of `template` (a file's `tokenizer.chat_template`). Throws when there is none, or when it is
    /// none of the known families (naming its first 80 characters, escaped for the terminal).
    public static func detect(from template: String?) throws -> ChatTemplate {
        guard let t = template, !t.isEmpty else { throw ChatTemplateError.missing }
        func has(_ s: String) -> Bool { t.contains(s) }
        if has("<|im_start|>") { return .chatml }
        if has("<|start_header_id|>") && has("<|eot_id|>") { return .llama3 }
        if has("<start_of_turn>") { return .gemma }
        if has("<|user|>") && has("<|end|>") { return .phi3 }
        if has("<|user|>") && has("</s>") { return .zephyr }
        if has("[INST]") { return has("<<SYS>>") ? .llama2 : .mistral }
        throw ChatTemplateError.unrecognised(String(t.prefix(80)))
    }

    /// The prompt for `messages` (role, content) in this family; with `addGenerationPrompt`, ends where the
    /// assistant's reply begins. The text starts without BOS: the tokenizer adds it when the model asks for it.
    /// Roles are "system", "user" and "assistant"; families without a system turn put it before the first user message.
    public func render(messages: [(role: String, content: String)], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch self {
        case .chatml:
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            for m in messages { out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .zephyr, .phi3:
            let end = self == .zephyr ? "</s>" : "<|end|>"
            for m in messages { out += "<|\(m.role)|>\n\(m.content)\(end)\n" }
            if addGenerationPrompt { out += "<|assistant|>\n" }
        case .gemma:
            for m in Self.foldingSystem(messages, separator: "\n\n") {
                out += "<start_of_turn>\(m.role == "assistant" ? "model" : m.role)\n\(m.content)<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }
        case .llama2, .mistral:
            // [INST] user [/INST] assistant</s> … ; llama-2 wraps a system message in <<SYS>> inside the first [INST].
            var system: String? = nil
            for m in messages {
                switch m.role {
                case "system": system = m.content
                case "assistant": out += " \(m.content)</s>"
                default:
                    var content = m.content
                    if let s = system {
                        content = self == .llama2 ? "<<SYS>>\n\(s)\n<</SYS>>\n\n\(content)" : "\(s)\n\n\(content)"
                        system = nil
                    }
                    out += "[INST] \(content) [/INST]"
                }
            }
        }
        return out
    }

    /// The messages with a system message merged into the next user message.
    static func foldingSystem(_ messages: [(role: String, content: String)], separator: String) -> [(role: String, content: String)] {
        var out: [(role: String, content: String)] = [], system: String? = nil
        for m in messages {
            if m.role == "system" { system = m.content; continue }
            if m.role == "user", let s = system { out.append((m.role, s + separator + m.content)); system = nil } else { out.append(m) }
        }
        return out
    }
}

public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    case missing
    case unrecognised(String)

    public var description: String {
        switch self {
        case .missing: return "the file has no chat template (tokenizer.chat_template)"
        case .unrecognised(let head):
            let escaped = head.unicodeScalars.map { s -> String in
                switch s {
                case "\n": return "\\n"
                case "\t": return "\\t"
                case "\\": return "\\\\"
                default: return s.value < 0x20 || (0x7F...0x9F).contains(s.value) ? "\\u{\(String(s.value, radix: 16))}" : String(s)
                }
            }.joined()
            return "the chat template is none Headroom knows (ChatML, Llama-2, Llama-3, Mistral, Zephyr, Phi-3, Gemma): it begins \"\(escaped)\""
        }
    }
}
