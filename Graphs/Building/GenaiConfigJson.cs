using System.Text.Json.Nodes;

namespace OnnxAttention.Graphs.Building;

/// <summary>
/// The genai_config.json that makes a folder a model onnxruntime-genai loads: model type llama, the decoder file, its
/// input and output names (the KV-cache names as genai's %d templates), head and layer counts, greedy search. A
/// custom-op library named here is loaded by genai into the decoder's session; genai only takes a library that lies in
/// the model folder (or the working directory), so the name is a file name beside genai_config.json.
/// </summary>
public static class GenaiConfigJson
{
    public static JsonObject Create(GenaiLlamaConfig c, string modelFile = "model.onnx", string? customOpsLibrary = null,
        int bosTokenId = 1, int eosTokenId = 2, int padTokenId = 0) =>
        Create(c.Vocab, c.Hidden, c.HeadSize, c.Heads, c.KvHeads, c.Layers, c.ContextLength, modelFile, customOpsLibrary, bosTokenId, eosTokenId, padTokenId);

    public static JsonObject Create(int vocab, int hidden, int headSize, int heads, int kvHeads, int layers, int contextLength,
        string modelFile = "model.onnx", string? customOpsLibrary = null, int bosTokenId = 1, int eosTokenId = 2, int padTokenId = 0)
    {
        var sessionOptions = new JsonObject { ["log_id"] = "onnxruntime-genai", ["provider_options"] = new JsonArray() };
        if (customOpsLibrary is not null) sessionOptions["custom_ops_library"] = customOpsLibrary;
        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["bos_token_id"] = bosTokenId,
                ["context_length"] = contextLength,
                ["eos_token_id"] = eosTokenId,
                ["pad_token_id"] = padTokenId,
                ["type"] = "llama",
                ["vocab_size"] = vocab,
                ["decoder"] = new JsonObject
                {
                    ["session_options"] = sessionOptions,
                    ["filename"] = modelFile,
                    ["head_size"] = headSize,
                    ["hidden_size"] = hidden,
                    ["inputs"] = new JsonObject
                    {
                        ["input_ids"] = GenaiLlamaModel.InputIds,
                        ["attention_mask"] = GenaiLlamaModel.AttentionMask,
                        ["past_key_names"] = GenaiLlamaModel.PastKeyTemplate,
                        ["past_value_names"] = GenaiLlamaModel.PastValueTemplate,
                    },
                    ["outputs"] = new JsonObject
                    {
                        ["logits"] = GenaiLlamaModel.Logits,
                        ["present_key_names"] = GenaiLlamaModel.PresentKeyTemplate,
                        ["present_value_names"] = GenaiLlamaModel.PresentValueTemplate,
                    },
                    ["num_attention_heads"] = heads,
                    ["num_hidden_layers"] = layers,
                    ["num_key_value_heads"] = kvHeads,
                },
            },
            ["search"] = new JsonObject
            {
                ["do_sample"] = false,
                ["max_length"] = contextLength,
                ["num_beams"] = 1,
                ["num_return_sequences"] = 1,
                ["past_present_share_buffer"] = false,
                ["temperature"] = 1.0,
                ["top_k"] = 1,
                ["top_p"] = 1.0,
            },
        };
    }
}
