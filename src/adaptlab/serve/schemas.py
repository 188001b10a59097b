"""Request and response bodies of the OpenAI-compatible API (the subset adaptlab serves), as pydantic models.

They are the OpenAPI schema too: schemathesis tests the server against exactly these. Requests accept the
sampling fields OpenAI clients send, but a strategy answers with the settings it was evaluated with; the
response's `adaptlab.ignored_parameters` lists what was not applied.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


class _Loose(BaseModel):
    # Clients send fields we do not model (logit_bias, tools, metadata ...): accept them, ignore them.
    model_config = ConfigDict(extra="allow", strict=True)


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    return value


# Strict, except that JSON's 2.0 is the integer 2 (JSON Schema says so); booleans and strings are not numbers.
Integer = Annotated[int, Field(strict=False), BeforeValidator(_json_number)]
NonBlank = Annotated[str, Field(pattern=r"\S", description="Text with at least one non-space character.")]


class TextPart(_Loose):
    type: Literal["text"] = Field(description="Only text parts are understood.")
    text: NonBlank


class UserMessage(_Loose):
    role: Literal["user"]
    content: NonBlank | Annotated[list[TextPart], Field(min_length=1)] = Field(
        description="The question: text, or text parts (joined with newlines).")
    name: str | None = None


class OtherMessage(_Loose):
    role: Literal["system", "developer", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


ChatMessageIn = Annotated[UserMessage | OtherMessage, Field(discriminator="role")]
_HAS_USER_MESSAGE: dict[str, Any] = {
    "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]}}


class StreamOptions(_Loose):
    include_usage: bool = Field(False, description="Send a last chunk with usage and no choices.")


class JsonSchemaFormat(_Loose):
    name: str = Field("output", description="A name for the schema (not used).")
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON Schema the answer must satisfy.")
    strict: bool | None = None
    description: str | None = None


class TextFormat(_Loose):
    type: Literal["text"] = Field(description="The strategy's own output.")


class JsonObjectFormat(_Loose):
    type: Literal["json_object"] = Field(description="A JSON object (decoding is constrained to one).")


class JsonSchemaResponseFormat(_Loose):
    type: Literal["json_schema"] = Field(description="JSON satisfying json_schema.schema (decoding is constrained "
                                         "to it).")
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class ChatCompletionRequest(_Loose):
    model: str = Field(description="A model id from GET /v1/models, e.g. 'adaptlab-rag'.")
    messages: list[ChatMessageIn] = Field(
        min_length=1, json_schema_extra=_HAS_USER_MESSAGE,
        description="The last user message is the question; the strategy's own prompt, examples and retrieved "
        "sources surround it. Earlier user and assistant messages make it a follow-up, which is made standalone "
        "([conversation] condense) before retrieval and the cache look-up; system, developer and tool messages "
        "are accepted and not used: the strategy keeps its own instructions.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: Integer | None = Field(None, description="Sampling seed for this answer (as the harness's --repeats).")
    n: Integer = Field(1, ge=1, le=1, description="Only one choice per request.")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: Integer | None = None
    max_completion_tokens: Integer | None = None
    stop: str | list[str] | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None

    @field_validator("messages")
    @classmethod
    def _has_question(cls, messages: list[UserMessage | OtherMessage]) -> list[UserMessage | OtherMessage]:
        if not any(isinstance(message, UserMessage) for message in messages):
            raise ValueError("no user message — the last message with role 'user' is the question")
        return messages


class EmbeddingRequest(_Loose):
    model: str = Field(description="The embedding model id from GET /v1/models.")
    input: NonBlank | Annotated[list[NonBlank], Field(min_length=1)] = Field(
        description="One text or a list of texts (token arrays are not accepted).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Integer | None = Field(None, description="Must be the model's own dimension when given.")
    user: str | None = None


# ------------------------------------------------------------------------------------------------ responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CitationOut(BaseModel):
    number: int = Field(description="The [n] marker in the answer text.")
    doc_id: str
    path: str = Field(description="The source document, relative to the project folder (serve.citation_paths); "
                      "never opened by the server.")
    title: str
    page: int | None
    slide: int | None = Field(None, description="Slide number (.pptx).")
    sheet: str | None = Field(None, description="Worksheet name (.xlsx).")
    cells: str | None = Field(None, description="Cell range, e.g. 'A1:D12' (.xlsx, .csv).")
    table: int | None = Field(None, description="Number of the table within its document.")
    heading_path: list[str] = Field([], description="The headings the cited text sits under, outermost first.")
    location: str = Field("", description="All of the above as one label, e.g. 'page 3, table 1' or 'Sales!A1:D12'.")
    char_start: int
    char_end: int
    snippet: str
    score: float


class AdaptlabExtension(BaseModel):
    """adaptlab's extension field: what answered, from where, and at what cost."""

    strategy: str
    cache: Literal["hit", "miss", "none"] = Field(description="hit: served from the answer cache; miss: generated "
                                                  "and stored; none: not a cached strategy (or cache down).")
    refused: bool = Field(description="The strategy declined to answer (nothing relevant was found).")
    citations: list[CitationOut]
    cost_usd: float
    latency_ms: float
    system_fingerprint: str = Field(description="Fingerprint of the strategy's settings and files.")
    ignored_parameters: list[str] = Field(description="Request fields that were accepted but not applied.")
    overridden_parameters: list[str] = Field(
        default_factory=list, description="Client sampling fields that were applied (max_tokens, temperature, "
        "top_p, stop, response_format): the answer is not the configuration that was evaluated.")
    standalone_question: str | None = Field(None, description="A follow-up (earlier user or assistant messages "
                                            "came first) as it was made standalone and answered.")
    as_evaluated: bool = Field(True, description="The answer used the strategy's evaluated settings (false when "
                               "overridden_parameters is not empty).")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[Choice]
    usage: Usage
    adaptlab: AdaptlabExtension


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` event of a streamed completion; the last one with a finish_reason carries usage and the
    adaptlab extension (citations are known only once the answer is complete)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    adaptlab: AdaptlabExtension | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "adaptlab"
    kind: str = Field(description="Strategy kind (prompt, rag, finetuned, finetuned_rag, cached) or 'embedding'.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: list[str]
    generation_queue: int = Field(description="Requests waiting for or in generation.")
    cache: Literal["up", "down", "none"] = Field(description="Answer cache backend reachable (none: not used).")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape: the `openai` client raises the matching exception class from the status."""

    error: ErrorDetail
