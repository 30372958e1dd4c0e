/**
 * The simulated tutor's reply: a friendly tutor in the session language (en, es, fr, de, it, pt,
 * ja; others fall back to English with a note) that greets, echoes a word the learner used, offers
 * an occasional tip and asks a follow-up question about the scenario. Deterministic: the same
 * conversation always gets the same reply.
 */
import type { ChatMessage, ConversationRequest } from '../upstream/provider.js';
import { fnv1a } from '../util/hash.js';
import { CJK, fill, pick, supportedLanguage, type SimulatedLanguage } from './language.js';
import { lookup, normalizePhrase, PHRASES, phraseRow } from './phrase-book.js';
import { EN_STOP, PACKS, wordSet, type Topic, type TutorPack } from './tutor-packs.js';

const TOPIC_WORDS: readonly [Topic, RegExp][] = [
  ['cafe', /coffee|caf[eéè]|caff[eè]|kaffee|cappuccino|latte|espresso|barista|\btea\b|コーヒー|カフェ|喫茶/iu],
  ['restaurant', /restau|ristorante|dinner|lunch|breakfast|meal|menu|waiter|food|comida|cena|dîner|essen|pranzo|jantar|レストラン|食事/iu],
  ['interview', /interview|job|career|hiring|recruit|entrevista|entretien|embauche|colloquio|vorstellung|bewerbung|emprego|trabajo|面接|仕事/iu],
  ['travel', /travel|trip|airport|hotel|station|train|flight|direction|tourist|holiday|vacation|journey|viaje|voyage|reise|viaggio|viagem|旅行|駅|ホテル|空港/iu],
  ['shopping', /shop|store|market|buy|clothes|compras|courses|einkauf|negozio|acquist|loja|買い物/iu],
];

function topicOf(scenario: string | undefined): Topic | undefined {
  if (!scenario?.trim()) return 'general';
  for (const [topic, re] of TOPIC_WORDS) if (re.test(scenario)) return topic;
  return undefined; // a scenario of its own
}

/** The most telling word of the learner's turn: the longest non-stop word (the later one on ties). */
function keywordOf(text: string, pack: TutorPack): string | undefined {
  let best: string | undefined;
  if (CJK.test(text)) {
    for (const run of text.match(/[\p{Script=Katakana}ー]{2,}|\p{Script=Han}+/gu) ?? []) {
      if (!pack.stopwords.has(run) && (!best || run.length >= best.length)) best = run;
    }
    return best?.slice(0, 12);
  }
  for (const token of text.match(/\p{L}[\p{L}\p{N}'’-]*/gu) ?? []) {
    const w = token.replace(/['’-]+$/, '');
    const lower = w.toLowerCase();
    if (w.length < 3 || pack.stopwords.has(lower) || EN_STOP.has(lower)) continue;
    if (!best || w.length >= best.length) best = w;
  }
  return best && best.length > 24 ? best.slice(0, 24) : best;
}

/** Looks like English: several English function words and none of the session language's. */
function looksEnglish(text: string, pack: TutorPack): boolean {
  const tokens = (text.toLowerCase().match(/\p{L}[\p{L}']*/gu) ?? []);
  if (CJK.test(text) || tokens.length < 2) return false;
  const strong = wordSet('the is are you my would like want have what where with this that please it\'s i\'m don\'t can how do');
  const en = tokens.filter((t) => strong.has(t)).length;
  const own = tokens.filter((t) => pack.stopwords.has(t) && !EN_STOP.has(t)).length;
  return en >= 2 && own === 0;
}

/** Canned answers to a few phrases the learner may say, by phrase-book row. */
const ANSWERS: readonly [string, string][] = [
  ['how are you', "i'm fine thank you"],
  ['thank you', "you're welcome"],
  ['thank you very much', "you're welcome"],
  ['hello', 'hello'],
  ['good morning', 'good morning'],
  ['good evening', 'good evening'],
  ['goodbye', 'see you later'],
];


function exclaim(text: string, lang: SimulatedLanguage): string {
  const t = lang === 'ja' ? text : text.charAt(0).toUpperCase() + text.slice(1);
  switch (lang) {
    case 'ja': return `${t}！`;
    case 'es': return `¡${t}!`;
    case 'fr': return `${t} !`;
    default: return `${t}!`;
  }
}

/** The simulated tutor's reply: greeting (first turn), reaction, an optional tip, a question. */
export function tutorReply(req: ConversationRequest): string {
  const lang = supportedLanguage(req.language);
  const pack = PACKS[lang ?? 'en'];
  const speaking: SimulatedLanguage = lang ?? 'en';
  const dialogue = req.messages.filter((m): m is ChatMessage & { role: 'user' | 'assistant' } => m.role !== 'system');
  const assistantTurns = dialogue.filter((m) => m.role === 'assistant');
  const first = assistantTurns.length === 0;
  const lastMessage = dialogue[dialogue.length - 1];
  const learner = lastMessage?.role === 'user' ? lastMessage.content.trim() : '';
  const hash = fnv1a(`${speaking}\u0000${req.scenario ?? ''}\u0000${dialogue.map((m) => `${m.role}:${m.content}`).join('\u0001')}`);

  const topic = topicOf(req.scenario);
  const scenario = req.scenario?.trim().slice(0, 80) ?? '';
  const lastAssistant = assistantTurns[assistantTurns.length - 1]?.content ?? '';

  // The follow-up question: one not asked yet (starting at a hashed position), else any but the last.
  let question: string;
  if (topic) {
    const qs = pack.topics[topic].questions;
    const start = hash % qs.length;
    const order = qs.map((_, k) => qs[(start + k) % qs.length]!);
    question = order.find((q) => !assistantTurns.some((m) => m.content.includes(q))) ?? order.find((q) => !lastAssistant.includes(q)) ?? order[0]!;
  } else {
    question = fill(pick(pack.custom, hash, 1), { s: scenario });
  }

  const parts: string[] = [];
  if (first) {
    parts.push(pick(pack.greetings, hash, 2));
    if (topic && topic !== 'general') parts.push(fill(pack.practising, { x: pack.topics[topic].label }));
    else if (learner) {
      const kw = keywordOf(learner, pack);
      if (kw) parts.push(fill(pick(pack.reactions, hash, 3), { kw }));
    }
    parts.push(question);
    if (!lang) parts.push(`(Note: the simulated tutor doesn't speak “${req.language}”, so we'll practise in English.)`);
    return parts.join(pack.joiner);
  }

  if (!learner) return [pick(pack.didntCatch, hash, 4), question].join(pack.joiner);

  // Reaction: a canned answer to a set phrase, else echo the learner's most telling word.
  const key = normalizePhrase(learner);
  const said = lookup(PHRASES, key, speaking);
  const answerKey = said ? ANSWERS.find(([q]) => phraseRow(q) === said.entry)?.[1] : undefined;
  const answer = answerKey ? phraseRow(answerKey)?.forms[speaking] : undefined;
  const kw = keywordOf(learner, pack);
  parts.push(answer ? exclaim(answer, speaking) : kw ? fill(pick(pack.reactions, hash, 5), { kw }) : pick(pack.plain, hash, 6));

  // At most one tip: a correction, a better way to say a set phrase, a nudge to use the language,
  // or now and then a general tip.
  let tip: string | undefined;
  for (const c of pack.corrections) {
    const m = learner.match(c.re);
    if (m) {
      tip = c.tip(m);
      break;
    }
  }
  if (!tip && speaking !== 'en') {
    const other = lookup(PHRASES, key, undefined);
    const form = other && other.lang !== speaking ? other.entry.forms[speaking] : undefined;
    if (form) tip = fill(pack.sayIt, { t: form });
    else if (looksEnglish(learner, pack)) tip = pack.tryInLanguage;
  }
  if (!tip && (hash >>> 7) % 3 === 0) tip = pick(pack.tips, hash, 7);
  if (tip && !lastAssistant.includes(tip)) parts.push(tip);

  parts.push(question);
  return parts.join(pack.joiner);
}
