"""Follow-up questions made standalone: "and for children?" after "What is the dose of paracetamol?" is searched
and looked up in the cache as "What is the dose of paracetamol for children?", never as a new question.

Two ways (`[conversation] condense`): the strategy's own generator rewrites the question from the last
`max_turns` messages with a short prompt; or a rule joins the previous user question and the follow-up (no model
call: cheap, and still never confuses a follow-up with the same words asked afresh). A question with no earlier
turns is returned as it is, without a call.
"""

from __future__ import annotations

from collections.abc import Sequence

from adaptlab.config import ConversationConfig
from adaptlab.models.base import ChatMessage, Generator
from adaptlab.types import Standalone, Turn

REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation before it: resolve "
    "pronouns and fill in what the question leaves out from the earlier turns. Answer with the rewritten question "
    "only, on one line. If the question already stands on its own, repeat it unchanged."
)


class FollowUpCondenser:
    def __init__(self, config: ConversationConfig, generator: Generator) -> None:
        self._config = config
        self._generator = generator

    def standalone(self, question: str, history: Sequence[Turn]) -> Standalone:
        recent = list(history)[-self._config.max_turns:]
        if not recent or self._config.condense == "off":
            return Standalone(question)
        if self._config.condense == "rule":
            return Standalone(_joined(question, recent))
        transcript = "\n".join(f"{turn.role}: {' '.join(turn.content.split())}" for turn in recent)
        messages: list[ChatMessage] = [
            {"role": "system", "content": REWRITE_PROMPT},
            {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast question: {question}\n\n"
                                        f"Standalone question:"},
        ]
        generation = self._generator.chat(messages, max_tokens=self._config.max_tokens, temperature=0.0)
        rewritten = next((line.strip() for line in generation.text.splitlines() if line.strip()), "")
        # A model that wrote nothing usable must not lose the context: fall back to the rule.
        return Standalone(rewritten or _joined(question, recent), generation.usage)


def _joined(question: str, recent: Sequence[Turn]) -> str:
    previous = next((turn.content for turn in reversed(recent) if turn.role == "user"), "")
    return f"{' '.join(previous.split())} {question}".strip() if previous else question
