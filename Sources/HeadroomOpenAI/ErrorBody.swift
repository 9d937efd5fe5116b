// An `APIError` as the body of an error answer, in OpenAI's envelope, and read back from one.
import Foundation

extension APIError {
    /// `{"error":{"code":null,"message":"…","param":"max_tokens","type":"invalid_request_error"}}`: keys sorted,
    /// `param` and `code` written as null when absent, as OpenAI writes them. The status goes in the HTTP
    /// status line, not the body.
    public func jsonBody() -> Data {
        ErrorEnvelope(error: .init(message: message, type: type, param: param, code: code)).jsonData()
    }

    /// The error in a body of OpenAI's envelope answered with HTTP `status`; nil when the body is not one.
    /// A numeric `code` (vLLM writes the status there) is read as its decimal text.
    public init?(jsonBody: Data, status: Int) {
        guard let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: jsonBody) else { return nil }
        let e = envelope.error
        self.init(status: status, message: e.message, type: e.type, param: e.param, code: e.code)
    }
}

struct ErrorEnvelope: ResponseBody {
    struct Body: Codable {
        var message: String
        var type: String
        var param: String?
        var code: String?

        init(message: String, type: String, param: String?, code: String?) {
            self.message = message; self.type = type; self.param = param; self.code = code
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            message = try c.decode(String.self, forKey: .message)
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
            param = try c.decodeIfPresent(String.self, forKey: .param)
            if let number = try? c.decodeIfPresent(Int.self, forKey: .code) {
                code = String(number)
            } else {
                code = try c.decodeIfPresent(String.self, forKey: .code)
            }
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)
            try c.encode(code, forKey: .code)
        }
    }

    var error: Body
}
