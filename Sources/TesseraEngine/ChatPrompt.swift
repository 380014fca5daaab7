// A conversation to prompt ids: the model's chat template renders the messages (with the assistant's
// turn opened when asked), and the tokenizer encodes the text, special tokens included. The CLI's chat
// and the server's chat endpoint both go through here, so they see the same prompt.
import TesseraTokenizers

public enum ChatPrompt {
    public static func ids(messages: [[String: String]], template: ChatTemplate, tokenizer: any Tokenizer,
                           addGenerationPrompt: Bool = true) throws(TemplateError) -> [Int32] {
        let text = try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt)
        return tokenizer.encode(text, addSpecialTokens: true)
    }
}
