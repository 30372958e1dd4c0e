/**
 * The built-in simulated upstream: no network, no key. Everything is deterministic (the same input
 * gives the same output) and derived from the request, so a newcomer can try the whole pipeline -
 * speak, get a transcript, a tutor reply, its audio, a pronunciation score, a translation - offline.
 *
 * - conversation: a friendly tutor in the session language (en, es, fr, de, it, pt, ja; others fall
 *   back to English with a note) that greets, echoes a word the learner used, offers an occasional
 *   tip and asks a follow-up question about the scenario.
 * - stt: picks a plausible learner sentence whose length fits the speech in the audio; "" on silence.
 * - tts: `synthesizeSpeech` at 24 kHz.
 * - pronunciation: per-word and overall 0-100 scores from the energy and timing of the audio.
 * - translation: a small phrase book and word list; anything else comes back as `[xx] text`.
 */
import { fnv1a } from '../util/hash.js';
import { decodeWav } from '../audio/wav.js';
import { frameRms, pcm16Stats, synthesizeSpeech, toMono, VOICED_FRAME_RMS } from './audio.js';
import type {
  AudioInput,
  CallOptions,
  ChatMessage,
  ConversationProvider,
  ConversationRequest,
  PronunciationProvider,
  PronunciationRequest,
  PronunciationResult,
  Providers,
  SttProvider,
  SttRequest,
  TranslationProvider,
  TranslationRequest,
  TtsProvider,
  TtsRequest,
  TtsResult,
} from './provider.js';
import { UpstreamError } from './provider.js';

export interface SimulatedOptions {
  /** Added latency per call in ms (default 0). */
  latencyMs?: number;
  /**
   * Source of latency jitter: when given, each call waits `latencyMs * (0.75 + 0.5 * random())`.
   * Without it the wait is exactly `latencyMs`. Answers never depend on it.
   */
  random?: () => number;
}

/** Languages the simulated providers speak; any other falls back to English. */
export const SIMULATED_LANGUAGES = ['en', 'es', 'fr', 'de', 'it', 'pt', 'ja'] as const;
export type SimulatedLanguage = (typeof SIMULATED_LANGUAGES)[number];

/** TTS output rate. */
export const SIMULATED_TTS_SAMPLE_RATE = 24000;

/** Below this RMS (about -40 dBFS) audio counts as silence. */
const SILENCE_RMS = 0.01;
/** Less voiced time than this is no speech either (a click, a breath). */
const MIN_SPEECH_MS = 120;
/** Assumed speaking rates of learners. */
const WORDS_PER_SECOND = 2.5;

function primaryTag(tag: string | undefined): string {
  return (tag ?? '').trim().toLowerCase().split(/[-_]/)[0] ?? '';
}

function supportedLanguage(tag: string | undefined): SimulatedLanguage | undefined {
  const p = primaryTag(tag);
  return (SIMULATED_LANGUAGES as readonly string[]).includes(p) ? (p as SimulatedLanguage) : undefined;
}

function pick<T>(items: readonly T[], hash: number, salt = 0): T {
  const h = Math.imul((hash ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0, 0x85ebca6b) >>> 0;
  return items[((h ^ (h >>> 15)) >>> 0) % items.length]!;
}

function fill(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
}

// ---------------------------------------------------------------------------------------------
// Cancellation and latency
// ---------------------------------------------------------------------------------------------

/** The rejection of a cancelled call: `name` is 'AbortError', `cause` the signal's reason. */
export class SimulatedAbortError extends Error {
  constructor(reason?: unknown) {
    super('The operation was aborted', reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
  }
}

function waitFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new SimulatedAbortError(signal.reason));
  if (!(ms > 0)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new SimulatedAbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(new SimulatedAbortError(signal.reason));
      else resolve();
    }, ms);
    timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

abstract class SimulatedBase {
  constructor(private readonly sim: SimulatedOptions = {}) {}

  /** Waits the configured latency; rejects with an AbortError if `signal` aborts first. */
  protected latency(opts: CallOptions | undefined): Promise<void> {
    const base = Math.max(0, this.sim.latencyMs ?? 0);
    const ms = this.sim.random && base > 0 ? base * (0.75 + 0.5 * this.sim.random()) : base;
    return waitFor(ms, opts?.signal);
  }
}

/** Decodes an AudioInput to mono PCM16, or throws an UpstreamError (status 400) naming the problem. */
function decodeInput(audio: AudioInput, upstream: string): { pcm16: Buffer; sampleRate: number } {
  if (audio.format === 'wav') {
    let wav: ReturnType<typeof decodeWav>;
    try {
      wav = decodeWav(audio.data);
    } catch (err) {
      throw new UpstreamError(upstream, `invalid audio: ${(err as Error).message}`, 400);
    }
    return { pcm16: toMono(wav.pcm16, wav.channels), sampleRate: wav.sampleRate };
  }
  if (audio.format !== 'pcm16') throw new UpstreamError(upstream, `invalid audio: unsupported format "${String(audio.format)}"`, 400);
  if (!(audio.sampleRate > 0) || !(audio.channels >= 1)) {
    throw new UpstreamError(upstream, `invalid audio: sample rate ${audio.sampleRate}, ${audio.channels} channel(s)`, 400);
  }
  return { pcm16: toMono(audio.data, Math.floor(audio.channels)), sampleRate: audio.sampleRate };
}

// ---------------------------------------------------------------------------------------------
// Phrase book (translation, and the tutor's "you can say" tips)
// ---------------------------------------------------------------------------------------------

/** Columns: en | es | fr | de | it | pt | ja; '/' separates accepted variants, the first is used. */
const PHRASE_ROWS: readonly string[] = [
  'hello/hi | hola | bonjour/salut | hallo | ciao | olá/oi | こんにちは',
  'goodbye/bye | adiós | au revoir | auf Wiedersehen/tschüss | arrivederci | adeus/tchau | さようなら',
  'good morning | buenos días | bonjour | guten Morgen | buongiorno | bom dia | おはようございます/おはよう',
  'good afternoon | buenas tardes | bon après-midi | guten Tag | buon pomeriggio | boa tarde | こんにちは',
  'good evening | buenas noches | bonsoir | guten Abend | buonasera | boa noite | こんばんは',
  'good night | buenas noches | bonne nuit | gute Nacht | buonanotte | boa noite | おやすみなさい/おやすみ',
  'thank you/thanks | gracias | merci | danke/danke schön | grazie | obrigado/obrigada | ありがとう/ありがとうございます',
  'thank you very much/thanks a lot | muchas gracias | merci beaucoup | vielen Dank | grazie mille | muito obrigado/muito obrigada | どうもありがとうございます',
  "you're welcome/you are welcome | de nada | de rien | gern geschehen/bitte schön | prego | de nada | どういたしまして",
  'please | por favor | s’il vous plaît/s’il te plaît | bitte | per favore | por favor | お願いします',
  'yes | sí | oui | ja | sì | sim | はい',
  'no | no | non | nein | no | não | いいえ',
  'how are you | cómo estás/qué tal/cómo está | comment ça va/comment allez-vous/ça va | wie geht es dir/wie geht’s/wie geht es Ihnen | come stai/come sta | como vai/como está/tudo bem | お元気ですか/元気ですか',
  "i'm fine thank you/i am fine thank you/i'm fine thanks/fine thanks | estoy bien, gracias/bien, gracias | je vais bien, merci/ça va bien, merci | mir geht es gut, danke/gut, danke | sto bene, grazie/bene, grazie | estou bem, obrigado/tudo bem, obrigado | 元気です、ありがとう",
  'nice to meet you | encantado de conocerte/mucho gusto/encantada | enchanté/enchantée | freut mich | piacere | muito prazer/prazer | はじめまして',
  'excuse me | disculpe/perdone | excusez-moi | Entschuldigung | mi scusi/scusi | com licença | すみません',
  "sorry/i'm sorry/i am sorry | lo siento/perdón | désolé/pardon | es tut mir leid/Entschuldigung | mi dispiace/scusa | desculpe/desculpa | ごめんなさい",
  "i don't understand/i do not understand | no entiendo | je ne comprends pas | ich verstehe nicht/ich verstehe das nicht | non capisco | não entendo/não compreendo | わかりません",
  "i don't know/i do not know | no lo sé/no sé | je ne sais pas | ich weiß nicht/ich weiß es nicht | non lo so | não sei | 知りません",
  'can you repeat that please/could you repeat that please/can you repeat that/could you repeat that | ¿puede repetirlo, por favor?/puede repetir, por favor | pouvez-vous répéter, s’il vous plaît/vous pouvez répéter | können Sie das bitte wiederholen/bitte wiederholen Sie das | può ripetere, per favore | pode repetir, por favor | もう一度お願いします',
  'do you speak english | habla inglés/hablas inglés | parlez-vous anglais/tu parles anglais | sprechen Sie Englisch/sprichst du Englisch | parla inglese/parli inglese | fala inglês/você fala inglês | 英語を話せますか',
  "i would like a coffee/i'd like a coffee | quisiera un café/me gustaría un café/quiero un café | je voudrais un café | ich möchte einen Kaffee/ich hätte gern einen Kaffee | vorrei un caffè | eu queria um café/eu gostaria de um café/queria um café | コーヒーをお願いします/コーヒーをください",
  'a coffee please/one coffee please/coffee please | un café, por favor | un café, s’il vous plaît | einen Kaffee, bitte/ein Kaffee, bitte | un caffè, per favore | um café, por favor | コーヒーをください',
  'the bill please/the check please/can i have the bill please | la cuenta, por favor | l’addition, s’il vous plaît | die Rechnung, bitte/zahlen, bitte | il conto, per favore | a conta, por favor | お会計をお願いします',
  'how much is it/how much does it cost/how much is this | cuánto cuesta/cuánto es | combien ça coûte/c’est combien | wie viel kostet das/was kostet das | quanto costa | quanto custa/quanto é | いくらですか',
  'where is the station/where is the train station | dónde está la estación | où est la gare | wo ist der Bahnhof | dov’è la stazione | onde fica a estação/onde é a estação | 駅はどこですか',
  'where is the bathroom/where is the toilet/where are the toilets | dónde está el baño | où sont les toilettes | wo ist die Toilette | dov’è il bagno | onde fica o banheiro/onde é a casa de banho | トイレはどこですか',
  "i'm looking for a hotel/i am looking for a hotel | busco un hotel/estoy buscando un hotel | je cherche un hôtel | ich suche ein Hotel | cerco un albergo/cerco un hotel | procuro um hotel/estou procurando um hotel | ホテルを探しています",
  'see you later/see you | hasta luego | à plus tard/à tout à l’heure | bis später/bis dann | a dopo/ci vediamo | até logo/até mais | またあとで/またね',
  'what time is it | qué hora es | quelle heure est-il | wie spät ist es | che ore sono | que horas são | 今何時ですか',
  "what's your name/what is your name | cómo te llamas | comment tu t’appelles/comment vous appelez-vous | wie heißt du/wie heißen Sie | come ti chiami | como você se chama/qual é o seu nome | お名前は何ですか",
  'i am learning/i am learning the language | estoy aprendiendo | j’apprends | ich lerne | sto imparando | estou aprendendo | 勉強しています',
  'help | ayuda/socorro | à l’aide/au secours | Hilfe | aiuto | socorro/ajuda | 助けて',
];

/** Columns as PHRASE_ROWS: single words for the word-by-word fallback. */
const WORD_ROWS: readonly string[] = [
  'coffee | café | café | Kaffee | caffè | café | コーヒー',
  'tea | té | thé | Tee | tè | chá | お茶',
  'water | agua | eau | Wasser | acqua | água | 水',
  'milk | leche | lait | Milch | latte | leite | 牛乳',
  'beer | cerveza | bière | Bier | birra | cerveja | ビール',
  'wine | vino | vin | Wein | vino | vinho | ワイン',
  'bread | pan | pain | Brot | pane | pão | パン',
  'cheese | queso | fromage | Käse | formaggio | queijo | チーズ',
  'sugar | azúcar | sucre | Zucker | zucchero | açúcar | 砂糖',
  'station | estación | gare | Bahnhof | stazione | estação | 駅',
  'train | tren | train | Zug | treno | trem/comboio | 電車',
  'bus | autobús | bus | Bus | autobus | ônibus/autocarro | バス',
  'airport | aeropuerto | aéroport | Flughafen | aeroporto | aeroporto | 空港',
  'hotel | hotel | hôtel | Hotel | albergo/hotel | hotel | ホテル',
  'ticket | billete | billet | Fahrkarte/Ticket | biglietto | bilhete | 切符',
  'bathroom/toilet | baño | toilettes | Toilette | bagno | banheiro | トイレ',
  'restaurant | restaurante | restaurant | Restaurant | ristorante | restaurante | レストラン',
  'menu | menú/carta | menu/carte | Speisekarte | menù | cardápio/menu | メニュー',
  'bill/check | cuenta | addition | Rechnung | conto | conta | お会計',
  'friend | amigo | ami | Freund | amico | amigo | 友達',
  'family | familia | famille | Familie | famiglia | família | 家族',
  'house/home | casa | maison | Haus | casa | casa | 家',
  'work/job | trabajo | travail | Arbeit | lavoro | trabalho | 仕事',
  'book | libro | livre | Buch | libro | livro | 本',
  'dog | perro | chien | Hund | cane | cachorro/cão | 犬',
  'cat | gato | chat | Katze | gatto | gato | 猫',
  'street | calle | rue | Straße | strada/via | rua | 通り',
  'city | ciudad | ville | Stadt | città | cidade | 町',
  'today | hoy | aujourd’hui | heute | oggi | hoje | 今日',
  'tomorrow | mañana | demain | morgen | domani | amanhã | 明日',
  'yesterday | ayer | hier | gestern | ieri | ontem | 昨日',
  'good | bueno | bon | gut | buono | bom | いい',
  'bad | malo | mauvais | schlecht | cattivo | mau | 悪い',
  'big/large | grande | grand | groß | grande | grande | 大きい',
  'small/little | pequeño | petit | klein | piccolo | pequeno | 小さい',
  'hot | caliente | chaud | heiß | caldo | quente | 熱い',
  'cold | frío | froid | kalt | freddo | frio | 冷たい',
  'very | muy | très | sehr | molto | muito | とても',
  'is | es/está | est | ist | è | é | です',
  'are | son/están | sont | sind | sono | são | です',
  'and | y | et | und | e | e | と',
  'with | con | avec | mit | con | com | と',
  'the | el/la | le/la | der/die/das | il/la | o/a | ',
  'a/an | un/una | un/une | ein/eine | un/una | um/uma | ',
  'i | yo | je | ich | io | eu | 私',
  'you | tú/usted | tu/vous | du/Sie | tu/Lei | você/tu | あなた',
  'where | dónde | où | wo | dove | onde | どこ',
  'what | qué | quoi | was | cosa | o que | 何',
  'one | uno | un | eins | uno | um | 一つ',
  'two | dos | deux | zwei | due | dois | 二つ',
];

interface Entry {
  /** Variants per language, normalised for matching. */
  readonly keys: Readonly<Partial<Record<SimulatedLanguage, readonly string[]>>>;
  /** Display form per language. */
  readonly forms: Readonly<Partial<Record<SimulatedLanguage, string>>>;
}

/** Lower case, no diacritics, no punctuation, single spaces: the matching key of a phrase. */
function normalizePhrase(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[’']/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function parseRows(rows: readonly string[]): Entry[] {
  return rows.map((row) => {
    const cols = row.split('|').map((c) => c.trim());
    const keys: Partial<Record<SimulatedLanguage, readonly string[]>> = {};
    const forms: Partial<Record<SimulatedLanguage, string>> = {};
    SIMULATED_LANGUAGES.forEach((lang, i) => {
      const variants = (cols[i] ?? '').split('/').map((v) => v.trim());
      forms[lang] = (variants[0] ?? '').replace(/^¿|\?$/g, '');
      keys[lang] = variants.map(normalizePhrase).filter((k) => k.length > 0);
    });
    return { keys, forms };
  });
}

const PHRASES = parseRows(PHRASE_ROWS);
const WORDS = parseRows(WORD_ROWS);

/** Finds `key` among the entries, in `source` if known, else in any language (English first). */
function lookup(entries: readonly Entry[], key: string, source: SimulatedLanguage | undefined): { entry: Entry; lang: SimulatedLanguage } | undefined {
  const langs = source ? [source] : SIMULATED_LANGUAGES;
  for (const lang of langs) {
    const entry = entries.find((e) => e.keys[lang]?.includes(key));
    if (entry) return { entry, lang };
  }
  return undefined;
}

/** Re-applies the original's capitalisation and end punctuation, in the target's conventions. */
function decorate(result: string, original: string, target: SimulatedLanguage): string {
  const trimmed = original.trim();
  let out = result;
  const first = trimmed.match(/\p{L}/u)?.[0];
  if (first && first !== first.toLowerCase() && target !== 'ja') out = out.charAt(0).toUpperCase() + out.slice(1);
  const end = trimmed.match(/[.!?。！？]$/u)?.[0];
  if (!end) return out;
  const kind = end === '?' || end === '？' ? '?' : end === '!' || end === '！' ? '!' : '.';
  switch (target) {
    case 'ja': return out + (kind === '?' ? '？' : kind === '!' ? '！' : '。');
    case 'es': return kind === '?' ? `¿${out}?` : kind === '!' ? `¡${out}!` : `${out}.`;
    case 'fr': return kind === '.' ? `${out}.` : `${out} ${kind}`;
    default: return out + kind;
  }
}

/** The simulated translation: phrase book, then word by word, else `[target] text`. */
function translate(req: TranslationRequest): string {
  const text = req.text;
  if (!text.trim()) return text;
  const target = supportedLanguage(req.targetLanguage);
  const source = supportedLanguage(req.sourceLanguage);
  if (req.sourceLanguage && primaryTag(req.sourceLanguage) === primaryTag(req.targetLanguage)) return text;
  if (target) {
    const key = normalizePhrase(text);
    const phrase = lookup(PHRASES, key, source);
    const form = phrase?.entry.forms[target];
    if (phrase && form) return decorate(form, text, target);

    const tokens = key.split(' ').filter(Boolean);
    if (tokens.length > 0 && tokens.length <= 12 && !/[\u3040-\u30ff\u3400-\u9fff]/u.test(text)) {
      const words: string[] = [];
      for (const token of tokens) {
        const hit = lookup(WORDS, token, source) ?? lookup(PHRASES, token, source);
        if (!hit) {
          words.length = 0;
          break;
        }
        const w = hit.entry.forms[target];
        if (w) words.push(w);
      }
      if (words.length) return decorate(words.join(target === 'ja' ? '' : ' '), text, target);
    }
  }
  return `[${req.targetLanguage}] ${text}`;
}

export class SimulatedTranslationProvider extends SimulatedBase implements TranslationProvider {
  async translate(req: TranslationRequest, opts?: CallOptions): Promise<string> {
    await this.latency(opts);
    return translate(req);
  }
}

// ---------------------------------------------------------------------------------------------
// Tutor
// ---------------------------------------------------------------------------------------------

type Topic = 'cafe' | 'restaurant' | 'interview' | 'travel' | 'shopping' | 'general';

interface Correction {
  readonly re: RegExp;
  readonly tip: (m: RegExpMatchArray) => string;
}

interface TutorPack {
  /** First-turn greetings (one sentence). */
  readonly greetings: readonly string[];
  /** "Today we're practising {x}." */
  readonly practising: string;
  /** Reactions echoing a word of the learner: {kw}. */
  readonly reactions: readonly string[];
  /** Reactions without a word to echo. */
  readonly plain: readonly string[];
  /** When the learner's turn is empty (nothing was heard). */
  readonly didntCatch: readonly string[];
  /** General tips, offered now and then. */
  readonly tips: readonly string[];
  /** "In Spanish you can say “{t}”." */
  readonly sayIt: string;
  /** When the learner answers in English. */
  readonly tryInLanguage: string;
  readonly topics: Readonly<Record<Topic, { readonly label: string; readonly questions: readonly string[] }>>;
  /** Follow-ups for a scenario outside the known topics: {s}. */
  readonly custom: readonly string[];
  readonly corrections: readonly Correction[];
  readonly stopwords: ReadonlySet<string>;
  /** Between sentences. */
  readonly joiner: string;
}

const wordSet = (s: string): ReadonlySet<string> => new Set(s.split(/\s+/).filter(Boolean));

const THIRD_PERSON: Readonly<Record<string, string>> = { have: 'has', do: 'does', go: 'goes', want: 'wants', like: 'likes', need: 'needs', work: 'works', live: 'lives' };

const EN_STOP = wordSet(`a an the and or but so if of to in on at by for from with about as into than then there here this that these those
  i me my mine you your yours he him his she her it its we us our they them their what which who whom whose when where why how
  is am are was were be been being do does did have has had having will would shall should can could may might must
  not no yes yeah ok okay please thanks thank very really just too also some any much many more most lot lots
  i'm i'd i'll i've you're it's don't doesn't didn't can't won't that's there's let's like want get got go going`);

const PACKS: Readonly<Record<SimulatedLanguage, TutorPack>> = {
  en: {
    greetings: ["Hi, I'm your English practice tutor!", 'Hello, great to practise with you!'],
    practising: "Today we're practising {x}.",
    reactions: ['“{kw}”, very good!', 'Nice, you said “{kw}”!', 'Ah, “{kw}”, I like that!'],
    plain: ['Very good!', 'Perfect!', 'Okay, I see.'],
    didntCatch: ["Sorry, I didn't catch that, could you say it again?", 'I missed that, can you repeat it a little louder?'],
    tips: [
      'Tip: “I’d like…” sounds more polite than “I want…”.',
      'Tip: in questions the helper verb comes first, as in “Do you…?” or “Can I…?”.',
      'Tip: link your words together, as in “an_apple”, to sound more natural.',
    ],
    sayIt: 'In English you can say “{t}”.',
    tryInLanguage: 'Try saying it in English!',
    topics: {
      cafe: { label: 'ordering at a café', questions: ['What would you like to drink?', 'Would you like something to eat with your coffee?', 'Is that for here or to take away?'] },
      restaurant: { label: 'ordering at a restaurant', questions: ['Are you ready to order?', 'What would you like as a main course?', 'Would you like to see the dessert menu?'] },
      interview: { label: 'a job interview', questions: ['Can you tell me a little about yourself?', 'Why do you want this job?', 'What is your greatest strength?'] },
      travel: { label: 'travelling', questions: ['Where are you travelling to?', 'How long are you staying?', 'What do you want to visit first?'] },
      shopping: { label: 'shopping', questions: ['What are you looking for today?', 'What size do you need?', 'Would you like to pay by card or in cash?'] },
      general: { label: 'everyday conversation', questions: ['What did you do today?', 'What do you like to do at the weekend?', 'Can you tell me about your family or friends?'] },
    },
    custom: ['Let’s stay in our scenario, “{s}”: what would you say next?', 'Imagine we are in this situation: “{s}”. What do you ask first?'],
    corrections: [
      { re: /\bi am agree\b/i, tip: () => 'Small correction: we say “I agree”, not “I am agree”.' },
      { re: /\b(he|she|it) (have|do|go|want|like|need|work|live)\b/i, tip: (m) => `Small correction: “${m[1]} ${THIRD_PERSON[m[2]!.toLowerCase()] ?? m[2]}”, with an -s for he, she and it.` },
      { re: /\bmore (better|worse|bigger|smaller|easier|harder)\b/i, tip: (m) => `Small correction: “${m[1]}” is already a comparative, so just say “${m[1]}”.` },
      { re: /\ba (?!one\b|once\b|euro|use)([aeio][a-z]+)\b/i, tip: (m) => `Small correction: before a vowel sound we say “an ${m[1]}”.` },
      { re: /(?:^|[^\p{L}'])i(?=[\s']|$)/u, tip: () => 'Small tip: “I” is always written with a capital letter.' },
      { re: /\bi want\b/i, tip: () => 'Tip: “I’d like…” sounds more polite than “I want…”.' },
    ],
    stopwords: EN_STOP,
    joiner: ' ',
  },
  es: {
    greetings: ['¡Hola, soy tu tutor de español!', '¡Hola, qué bien practicar contigo!'],
    practising: 'Hoy practicamos {x}.',
    reactions: ['¡«{kw}», muy bien!', '¡Genial, has dicho «{kw}»!', '¡Ah, «{kw}», me gusta!'],
    plain: ['¡Muy bien!', '¡Perfecto!', 'Vale, entiendo.'],
    didntCatch: ['Perdona, no te he oído bien, ¿puedes repetirlo?', 'No te he entendido, ¿puedes decirlo otra vez un poco más alto?'],
    tips: [
      'Consejo: «quisiera» suena más educado que «quiero».',
      'Consejo: usamos «estar» para estados, como en «estoy cansado».',
      'Consejo: en español, las preguntas escritas empiezan con «¿».',
    ],
    sayIt: 'En español puedes decir «{t}».',
    tryInLanguage: '¡Intenta decirlo en español!',
    topics: {
      cafe: { label: 'cómo pedir un café', questions: ['¿Qué te gustaría tomar?', '¿Quieres algo de comer con el café?', '¿Es para tomar aquí o para llevar?'] },
      restaurant: { label: 'cómo pedir en un restaurante', questions: ['¿Ya sabes qué vas a pedir?', '¿Qué te gustaría de segundo plato?', '¿Quieres ver la carta de postres?'] },
      interview: { label: 'una entrevista de trabajo', questions: ['¿Puedes hablarme un poco de ti?', '¿Por qué quieres este trabajo?', '¿Cuál es tu mayor fortaleza?'] },
      travel: { label: 'conversaciones de viaje', questions: ['¿Adónde viajas?', '¿Cuántos días te vas a quedar?', '¿Qué quieres visitar primero?'] },
      shopping: { label: 'cómo comprar en una tienda', questions: ['¿Qué estás buscando hoy?', '¿Qué talla necesitas?', '¿Vas a pagar con tarjeta o en efectivo?'] },
      general: { label: 'conversación del día a día', questions: ['¿Qué has hecho hoy?', '¿Qué te gusta hacer los fines de semana?', '¿Me hablas de tu familia o de tus amigos?'] },
    },
    custom: ['Sigamos con nuestra situación, «{s}»: ¿qué dirías ahora?', 'Imagina que estamos en esta situación: «{s}». ¿Qué preguntas primero?'],
    corrections: [
      { re: /\byo gusto\b/i, tip: () => 'Una pequeña corrección: se dice «me gusta», no «yo gusto».' },
      { re: /\bsoy (cansad[oa]|enferm[oa]|content[oa]|nervios[oa]|aburrid[oa]|preocupad[oa])\b/i, tip: (m) => `Una pequeña corrección: para estados usamos «estar», así que «estoy ${m[1]}».` },
      { re: /\btengo (frío|calor|hambre|sed)\b/i, tip: (m) => `¡Muy bien usado, «tengo ${m[1]}»!` },
      { re: /\bquiero\b/i, tip: () => 'Consejo: «quisiera» o «me gustaría» suenan más educados que «quiero».' },
    ],
    stopwords: wordSet(`a al algo ante con como de del el ella ellas ellos en entre era es esa ese eso esta está estoy este esto fue ha hay la las le les lo los
      me mi mis muy más nada ni no nos o para pero por porque que qué se ser si sí sin sobre soy su sus también te ti tu tú un una uno unos unas y ya yo
      quiero quisiera gustaría gusta tengo tiene puedo puede voy va bueno bien hola gracias favor`),
    joiner: ' ',
  },
  fr: {
    greetings: ['Bonjour, je suis ton tuteur de français !', 'Salut, ravi de pratiquer avec toi !'],
    practising: "Aujourd'hui, on pratique {x}.",
    reactions: ['« {kw} », très bien !', 'Super, tu as dit « {kw} » !', "Ah, « {kw} », j'aime bien !"],
    plain: ['Très bien !', 'Parfait !', "D'accord, je comprends."],
    didntCatch: ["Pardon, je n'ai pas bien entendu, tu peux répéter ?", "Je n'ai pas compris, tu peux le redire un peu plus fort ?"],
    tips: [
      'Astuce : « je voudrais » est plus poli que « je veux ».',
      'Astuce : « tu » pour les amis, « vous » pour les inconnus.',
      'Astuce : fais bien la liaison, comme dans « les_amis ».',
    ],
    sayIt: 'En français, tu peux dire « {t} ».',
    tryInLanguage: 'Essaie de le dire en français !',
    topics: {
      cafe: { label: 'comment commander un café', questions: ["Qu'est-ce que tu veux boire ?", 'Tu veux quelque chose à manger avec ton café ?', "C'est sur place ou à emporter ?"] },
      restaurant: { label: 'comment commander au restaurant', questions: ['Tu as choisi ce que tu vas prendre ?', "Qu'est-ce que tu veux comme plat principal ?", 'Tu veux voir la carte des desserts ?'] },
      interview: { label: "un entretien d'embauche", questions: ['Tu peux te présenter en quelques mots ?', 'Pourquoi veux-tu ce poste ?', 'Quelle est ta plus grande qualité ?'] },
      travel: { label: 'les conversations de voyage', questions: ['Où est-ce que tu voyages ?', 'Tu restes combien de jours ?', "Qu'est-ce que tu veux visiter en premier ?"] },
      shopping: { label: 'les courses et le shopping', questions: ["Qu'est-ce que tu cherches aujourd'hui ?", 'Quelle taille il te faut ?', 'Tu paies par carte ou en espèces ?'] },
      general: { label: 'la conversation de tous les jours', questions: ["Qu'est-ce que tu as fait aujourd'hui ?", "Qu'est-ce que tu aimes faire le week-end ?", 'Tu peux me parler de ta famille ou de tes amis ?'] },
    },
    custom: ["Restons dans notre situation, « {s} » : qu'est-ce que tu dirais maintenant ?", "Imagine la situation : « {s} ». Qu'est-ce que tu demandes d'abord ?"],
    corrections: [
      { re: /\bje suis (\d+) ans\b/i, tip: (m) => `Petite correction : on dit « j'ai ${m[1]} ans », pas « je suis ${m[1]} ans ».` },
      { re: /\bà le\b/i, tip: () => 'Petite correction : « à le » devient « au », comme dans « au café ».' },
      { re: /\bde le\b/i, tip: () => 'Petite correction : « de le » devient « du », comme dans « du lait ».' },
      { re: /\bje veux\b/i, tip: () => 'Astuce : « je voudrais » est plus poli que « je veux ».' },
    ],
    stopwords: wordSet(`a à au aux avec ce ces cet cette c d de des du elle elles en est et être il ils j je l la le les leur lui m ma mais me mes moi mon
      n ne nous on ou où par pas pour qu que qui s sa se ses si son sur t ta te tes toi ton tu un une vous y ai as avons suis es sommes êtes sont
      veux voudrais peux bien très oui non merci bonjour plaît vais va aussi`),
    joiner: ' ',
  },
  de: {
    greetings: ['Hallo, ich bin dein Deutsch-Tutor!', 'Hallo, schön, mit dir zu üben!'],
    practising: 'Heute üben wir {x}.',
    reactions: ['„{kw}“, sehr gut!', 'Super, du hast „{kw}“ gesagt!', 'Ah, „{kw}“, gefällt mir!'],
    plain: ['Sehr gut!', 'Perfekt!', 'Alles klar, verstehe.'],
    didntCatch: ['Entschuldigung, das habe ich nicht verstanden, kannst du das wiederholen?', 'Ich habe dich nicht gehört, kannst du es etwas lauter sagen?'],
    tips: [
      'Tipp: „Ich möchte …“ klingt höflicher als „Ich will …“.',
      'Tipp: Im Hauptsatz steht das Verb an zweiter Stelle.',
      'Tipp: Nomen schreibt man im Deutschen immer groß.',
    ],
    sayIt: 'Auf Deutsch kannst du „{t}“ sagen.',
    tryInLanguage: 'Versuch es auf Deutsch zu sagen!',
    topics: {
      cafe: { label: 'Kaffee bestellen', questions: ['Was möchtest du trinken?', 'Möchtest du etwas zum Kaffee essen?', 'Zum Hiertrinken oder zum Mitnehmen?'] },
      restaurant: { label: 'im Restaurant bestellen', questions: ['Weißt du schon, was du bestellen möchtest?', 'Was möchtest du als Hauptgericht?', 'Möchtest du die Dessertkarte sehen?'] },
      interview: { label: 'ein Vorstellungsgespräch', questions: ['Kannst du dich kurz vorstellen?', 'Warum möchtest du diese Stelle?', 'Was ist deine größte Stärke?'] },
      travel: { label: 'Gespräche auf Reisen', questions: ['Wohin reist du?', 'Wie lange bleibst du?', 'Was möchtest du zuerst besichtigen?'] },
      shopping: { label: 'Einkaufen', questions: ['Was suchst du heute?', 'Welche Größe brauchst du?', 'Zahlst du mit Karte oder bar?'] },
      general: { label: 'Alltagsgespräche', questions: ['Was hast du heute gemacht?', 'Was machst du gern am Wochenende?', 'Erzählst du mir von deiner Familie oder deinen Freunden?'] },
    },
    custom: ['Bleiben wir bei unserer Situation, „{s}“: Was würdest du jetzt sagen?', 'Stell dir die Situation vor: „{s}“. Was fragst du zuerst?'],
    corrections: [
      { re: /\bich (bin|habe) kalt\b/i, tip: () => 'Kleine Korrektur: Man sagt „mir ist kalt“.' },
      { re: /\bich bin (\d+)\s*$/i, tip: (m) => `Gut! Noch natürlicher: „Ich bin ${m[1]} Jahre alt.“` },
      { re: /\bich will\b/i, tip: () => 'Tipp: „Ich möchte …“ klingt höflicher als „Ich will …“.' },
    ],
    stopwords: wordSet(`aber als am an auch auf aus bei bin bist da das dass dem den der des dich die dir du ein eine einem einen einer es für hab habe hat
      ich ihr im in ist ja kann mit mein meine mich mir nicht noch nur oder sehr sie sind so und uns von vor war was wie wir will wo zu zum zur
      möchte möchten hätte gern gerne bitte danke hallo gut`),
    joiner: ' ',
  },
  it: {
    greetings: ['Ciao, sono il tuo tutor di italiano!', 'Ciao, che bello fare pratica insieme!'],
    practising: 'Oggi ci esercitiamo a {x}.',
    reactions: ['«{kw}», molto bene!', 'Ottimo, hai detto «{kw}»!', 'Ah, «{kw}», mi piace!'],
    plain: ['Molto bene!', 'Perfetto!', 'Va bene, capisco.'],
    didntCatch: ['Scusa, non ho sentito bene, puoi ripetere?', 'Non ho capito, puoi dirlo di nuovo un po’ più forte?'],
    tips: [
      'Consiglio: «vorrei» è più gentile di «voglio».',
      'Consiglio: attenzione alle doppie, come in «caffè» e «latte».',
      'Consiglio: usa «Lei» per parlare in modo formale.',
    ],
    sayIt: 'In italiano puoi dire «{t}».',
    tryInLanguage: 'Prova a dirlo in italiano!',
    topics: {
      cafe: { label: 'ordinare un caffè', questions: ['Cosa vuoi bere?', 'Vuoi qualcosa da mangiare con il caffè?', 'Lo prendi qui o da portare via?'] },
      restaurant: { label: 'ordinare al ristorante', questions: ['Hai già deciso cosa ordinare?', 'Cosa prendi come secondo?', 'Vuoi vedere il menù dei dolci?'] },
      interview: { label: 'fare un colloquio di lavoro', questions: ['Puoi parlarmi un po’ di te?', 'Perché vuoi questo lavoro?', 'Qual è il tuo punto di forza?'] },
      travel: { label: 'parlare in viaggio', questions: ['Dove vai in viaggio?', 'Quanti giorni resti?', 'Cosa vuoi visitare per primo?'] },
      shopping: { label: 'fare acquisti', questions: ['Cosa stai cercando oggi?', 'Che taglia ti serve?', 'Paghi con la carta o in contanti?'] },
      general: { label: 'conversare ogni giorno', questions: ['Cosa hai fatto oggi?', 'Cosa ti piace fare nel fine settimana?', 'Mi parli della tua famiglia o dei tuoi amici?'] },
    },
    custom: ['Restiamo nella nostra situazione, «{s}»: cosa diresti adesso?', 'Immagina la situazione: «{s}». Cosa chiedi per primo?'],
    corrections: [
      { re: /\bsono (\d+) anni\b/i, tip: (m) => `Piccola correzione: si dice «ho ${m[1]} anni», non «sono ${m[1]} anni».` },
      { re: /\bvoglio\b/i, tip: () => 'Consiglio: «vorrei» è più gentile di «voglio».' },
    ],
    stopwords: wordSet(`a ad al alla anche che chi ci come con da dal del della di e è ed gli ha ho i il in io la le lei li lo lui ma mi mia mio ne
      nel nella no non noi o per più quando questo quella quello se si sì sono su ti tu tuo un una uno voi vorrei voglio posso grazie ciao
      favore bene molto`),
    joiner: ' ',
  },
  pt: {
    greetings: ['Olá, sou o seu tutor de português!', 'Olá, que bom praticar com você!'],
    practising: 'Hoje vamos praticar {x}.',
    reactions: ['«{kw}», muito bem!', 'Ótimo, você disse «{kw}»!', 'Ah, «{kw}», gostei!'],
    plain: ['Muito bem!', 'Perfeito!', 'Certo, entendi.'],
    didntCatch: ['Desculpe, não ouvi bem, pode repetir?', 'Não entendi, pode dizer de novo um pouco mais alto?'],
    tips: [
      'Dica: «eu queria» ou «eu gostaria» soa mais educado do que «eu quero».',
      'Dica: no Brasil, «você» é mais comum do que «tu».',
      'Dica: cuidado com os sons nasais, como em «pão» e «mãe».',
    ],
    sayIt: 'Em português, você pode dizer «{t}».',
    tryInLanguage: 'Tente dizer isso em português!',
    topics: {
      cafe: { label: 'o pedido num café', questions: ['O que você gostaria de beber?', 'Quer algo para comer com o café?', 'É para tomar aqui ou para levar?'] },
      restaurant: { label: 'o pedido num restaurante', questions: ['Você já sabe o que vai pedir?', 'O que você gostaria como prato principal?', 'Quer ver o cardápio de sobremesas?'] },
      interview: { label: 'uma entrevista de emprego', questions: ['Pode falar um pouco sobre você?', 'Por que você quer este emprego?', 'Qual é o seu ponto forte?'] },
      travel: { label: 'conversas de viagem', questions: ['Para onde você vai viajar?', 'Quantos dias você vai ficar?', 'O que você quer visitar primeiro?'] },
      shopping: { label: 'conversas de compras', questions: ['O que você está procurando hoje?', 'Qual é o seu tamanho?', 'Vai pagar com cartão ou em dinheiro?'] },
      general: { label: 'conversas do dia a dia', questions: ['O que você fez hoje?', 'O que você gosta de fazer no fim de semana?', 'Pode me falar da sua família ou dos seus amigos?'] },
    },
    custom: ['Vamos continuar na nossa situação, «{s}»: o que você diria agora?', 'Imagine a situação: «{s}». O que você pergunta primeiro?'],
    corrections: [
      { re: /\bsou (cansad[oa]|doente|nervos[oa]|preocupad[oa])\b/i, tip: (m) => `Uma pequena correção: para estados usamos «estar», então «estou ${m[1]}».` },
      { re: /\b(?:eu )?quero\b/i, tip: () => 'Dica: «eu queria» ou «eu gostaria» soa mais educado do que «eu quero».' },
    ],
    stopwords: wordSet(`a à ao aos as com como da das de do dos e é ela ele em era essa esse esta está estou eu foi há isso já lhe mais mas me meu minha
      muito na nas não no nos o os ou para pela pelo por que se sem ser seu sua também te tem tenho um uma você vocês quero queria gostaria
      posso pode obrigado obrigada olá bem sim favor`),
    joiner: ' ',
  },
  ja: {
    greetings: ['こんにちは、日本語のチューターです！', 'こんにちは、一緒に練習しましょう！'],
    practising: '今日は{x}を練習しましょう。',
    reactions: ['「{kw}」、いいですね！', '「{kw}」と言いましたね、すばらしい！', '「{kw}」ですね、いい表現です！'],
    plain: ['いいですね！', '完璧です！', 'なるほど、わかりました。'],
    didntCatch: ['すみません、よく聞こえませんでした。もう一度言ってください。', 'もう少し大きな声で、もう一度お願いします。'],
    tips: [
      'ヒント：お願いするときは「〜をください」や「〜をお願いします」が便利です。',
      'ヒント：丁寧に話すときは「です・ます」を使いましょう。',
      'ヒント：「コーヒー」の「ー」のような長い音は、しっかり伸ばしましょう。',
    ],
    sayIt: '日本語では「{t}」と言えます。',
    tryInLanguage: '日本語で言ってみましょう！',
    topics: {
      cafe: { label: 'カフェでの注文', questions: ['何を飲みたいですか？', 'コーヒーと一緒に何か食べますか？', '店内でお召し上がりですか、お持ち帰りですか？'] },
      restaurant: { label: 'レストランでの注文', questions: ['ご注文はお決まりですか？', 'メインは何にしますか？', 'デザートのメニューを見ますか？'] },
      interview: { label: '仕事の面接', questions: ['簡単に自己紹介をしてください。', 'どうしてこの仕事をしたいですか？', 'あなたの長所は何ですか？'] },
      travel: { label: '旅行の会話', questions: ['どこへ旅行しますか？', '何日間滞在しますか？', '最初にどこを見たいですか？'] },
      shopping: { label: '買い物の会話', questions: ['今日は何を探していますか？', 'サイズはいくつですか？', 'カードで払いますか、現金で払いますか？'] },
      general: { label: '日常会話', questions: ['今日は何をしましたか？', '週末は何をするのが好きですか？', '家族や友達について話してくれますか？'] },
    },
    custom: ['「{s}」という場面を続けましょう。次に何と言いますか？', '「{s}」という場面を想像してください。最初に何を聞きますか？'],
    corrections: [],
    stopwords: wordSet('です ます でした ました これ それ あれ ここ そこ どこ わたし 私'),
    joiner: '',
  },
};

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

const CJK = /[\u3040-\u30ff\u3400-\u9fff]/u;

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

function phraseRow(en: string): Entry | undefined {
  const key = normalizePhrase(en);
  return PHRASES.find((e) => e.keys.en?.[0] === key);
}

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
function tutorReply(req: ConversationRequest): string {
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

export class SimulatedConversationProvider extends SimulatedBase implements ConversationProvider {
  async reply(req: ConversationRequest, opts?: CallOptions): Promise<string> {
    await this.latency(opts);
    return tutorReply(req);
  }
}

// ---------------------------------------------------------------------------------------------
// Speech to text
// ---------------------------------------------------------------------------------------------

/** Learner sentences by language, from short to long. */
const STT_PHRASES: Readonly<Record<SimulatedLanguage, readonly string[]>> = {
  en: [
    'Hello.', 'Yes, please.', 'Thank you very much.', 'I would like a coffee.', 'Where is the train station?',
    'My name is Alex and I live in Berlin.', 'Could you speak a little more slowly, please?', 'I think the weather is very nice today.',
    'Yesterday I went to the market with my friends.', 'I have been learning English for two years, but I still make mistakes.',
    'Can I have a table for two people near the window, please?',
    'When I was on holiday last summer, I visited three museums and ate a lot of good food.',
  ],
  es: [
    'Hola.', 'Sí, por favor.', 'Muchas gracias.', 'Quisiera un café con leche.', '¿Dónde está la estación de tren?',
    'Me llamo Alex y vivo en Berlín.', '¿Puede hablar un poco más despacio, por favor?', 'Creo que hoy hace muy buen tiempo.',
    'Ayer fui al mercado con mis amigos.', 'Estudio español desde hace dos años, pero todavía cometo errores.',
    '¿Nos da una mesa para dos personas cerca de la ventana, por favor?',
    'El verano pasado, durante las vacaciones, visité tres museos y comí muy bien.',
  ],
  fr: [
    'Bonjour.', "Oui, s'il vous plaît.", 'Merci beaucoup.', 'Je voudrais un café au lait.', "Où est la gare, s'il vous plaît ?",
    "Je m'appelle Alex et j'habite à Berlin.", "Pouvez-vous parler un peu plus lentement, s'il vous plaît ?", "Je pense qu'il fait très beau aujourd'hui.",
    'Hier, je suis allé au marché avec mes amis.', "J'apprends le français depuis deux ans, mais je fais encore des erreurs.",
    'Est-ce que nous pouvons avoir une table pour deux près de la fenêtre ?',
    "L'été dernier, pendant les vacances, j'ai visité trois musées et j'ai très bien mangé.",
  ],
  de: [
    'Hallo.', 'Ja, bitte.', 'Vielen Dank.', 'Ich möchte einen Kaffee mit Milch.', 'Wo ist der Bahnhof?',
    'Ich heiße Alex und wohne in Berlin.', 'Können Sie bitte etwas langsamer sprechen?', 'Ich finde, das Wetter ist heute sehr schön.',
    'Gestern bin ich mit meinen Freunden auf den Markt gegangen.', 'Ich lerne seit zwei Jahren Deutsch, aber ich mache noch Fehler.',
    'Können wir bitte einen Tisch für zwei Personen am Fenster haben?',
    'Letzten Sommer habe ich im Urlaub drei Museen besucht und sehr gut gegessen.',
  ],
  it: [
    'Ciao.', 'Sì, grazie.', 'Grazie mille.', 'Vorrei un caffè macchiato.', "Dov'è la stazione dei treni?",
    'Mi chiamo Alex e abito a Berlino.', "Può parlare un po' più lentamente, per favore?", 'Penso che oggi faccia molto bel tempo.',
    'Ieri sono andato al mercato con i miei amici.', "Studio l'italiano da due anni, ma faccio ancora degli errori.",
    'Possiamo avere un tavolo per due vicino alla finestra, per favore?',
    "L'estate scorsa, in vacanza, ho visitato tre musei e ho mangiato benissimo.",
  ],
  pt: [
    'Olá.', 'Sim, por favor.', 'Muito obrigado.', 'Eu queria um café com leite.', 'Onde fica a estação de trem?',
    'Meu nome é Alex e eu moro em Berlim.', 'Você pode falar um pouco mais devagar, por favor?', 'Acho que hoje o tempo está muito bom.',
    'Ontem eu fui ao mercado com os meus amigos.', 'Estudo português há dois anos, mas ainda cometo erros.',
    'Pode nos dar uma mesa para duas pessoas perto da janela, por favor?',
    'No verão passado, nas férias, visitei três museus e comi muito bem.',
  ],
  ja: [
    'こんにちは。', 'はい、お願いします。', 'どうもありがとうございます。', 'コーヒーを一つください。', '駅はどこですか？',
    'アレックスです。ベルリンに住んでいます。', 'もう少しゆっくり話してください。', '今日はとてもいい天気ですね。',
    '昨日、友達と市場に行きました。', '日本語を二年間勉強していますが、まだ間違えます。',
    '窓の近くの二人用のテーブルをお願いできますか？',
    '去年の夏休みに博物館を三つ訪れて、おいしいものをたくさん食べました。',
  ],
};

/** Seconds a learner needs to say `text`. */
function spokenSeconds(text: string, lang: SimulatedLanguage): number {
  return text.length / (lang === 'ja' ? 7 : 13.5);
}

/** Mixes a 32-bit hash with a counter (for a sequence of picks from one fingerprint). */
function mix(h: number, i: number): number {
  let x = (h ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

function transcribe(req: SttRequest): string {
  const { pcm16, sampleRate } = decodeInput(req.audio, 'stt');
  const stats = pcm16Stats(pcm16, sampleRate);
  if (stats.rms < SILENCE_RMS || (stats.voicedMs ?? 0) < MIN_SPEECH_MS) return '';
  const lang = supportedLanguage(req.language) ?? 'en';
  const bank = STT_PHRASES[lang];
  const span = ((stats.speechEndMs ?? 0) - (stats.speechStartMs ?? 0)) / 1000;
  const longest = Math.max(...bank.map((p) => spokenSeconds(p, lang)));

  if (span <= longest * 1.3) {
    // One sentence: one of the three whose length fits best, chosen by the fingerprint.
    const byFit = [...bank].sort((a, b) => Math.abs(spokenSeconds(a, lang) - span) - Math.abs(spokenSeconds(b, lang) - span));
    return byFit[stats.fingerprint % 3]!;
  }
  // A long recording: several sentences filling the time.
  const long = bank.slice(-6);
  const parts: string[] = [];
  let said = 0;
  for (let i = 0; said < span * 0.85 && parts.length < 6; i++) {
    const p = long[mix(stats.fingerprint, i) % long.length]!;
    if (parts.includes(p) && i < 50) continue;
    parts.push(p);
    said += spokenSeconds(p, lang);
  }
  return parts.join(lang === 'ja' ? '' : ' ');
}

export class SimulatedSttProvider extends SimulatedBase implements SttProvider {
  async transcribe(req: SttRequest, opts?: CallOptions): Promise<string> {
    await this.latency(opts);
    return transcribe(req);
  }
}

// ---------------------------------------------------------------------------------------------
// Text to speech
// ---------------------------------------------------------------------------------------------

export class SimulatedTtsProvider extends SimulatedBase implements TtsProvider {
  async speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult> {
    await this.latency(opts);
    const audio = synthesizeSpeech(req.text, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, voice: req.voice, language: req.language });
    return { audio, sampleRate: SIMULATED_TTS_SAMPLE_RATE };
  }
}

// ---------------------------------------------------------------------------------------------
// Pronunciation
// ---------------------------------------------------------------------------------------------

/** The words of a reference text; Japanese runs without spaces are split where the script changes. */
function referenceWords(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\s+/)) {
    const token = raw.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    if (!token) continue;
    if (CJK.test(token)) {
      const runs = token.match(/\p{Script=Han}+[\p{Script=Hiragana}]*|[\p{Script=Katakana}ー]+|\p{Script=Hiragana}+|[^\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}ー\p{P}]+/gu);
      out.push(...(runs ?? [token]));
    } else out.push(token);
  }
  return out;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

function assess(req: PronunciationRequest): PronunciationResult {
  const { pcm16, sampleRate } = decodeInput(req.audio, 'pronunciation');
  const stats = pcm16Stats(pcm16, sampleRate);
  const refWords = referenceWords(req.referenceText);
  const lang = supportedLanguage(req.language) ?? 'en';
  const wordHash = (w: string, i: number): number => mix(fnv1a(w.toLowerCase(), stats.fingerprint), i) / 2 ** 32;

  const silent = stats.rms < SILENCE_RMS || (stats.voicedMs ?? 0) < MIN_SPEECH_MS;
  let quality = 0;
  let perWord: number[] = refWords.map(() => 0);
  if (!silent) {
    // Timing: the speech should last about as long as the reference takes to say.
    // About 2.5 words a second, a long word counting as several (one per ~5.5 letters).
    const expected = lang === 'ja'
      ? Math.max(0.5, [...req.referenceText.replace(/\s+/g, '')].length / 7)
      : Math.max(0.5, refWords.reduce((n, w) => n + Math.max(1, [...w].length / 5.5), 0) / WORDS_PER_SECOND);
    const spanMs = Math.max(1, (stats.speechEndMs ?? 0) - (stats.speechStartMs ?? 0));
    const r = spanMs / 1000 / expected;
    const timing = r < 0.25 ? 0.1 : r < 0.6 ? 0.1 + (0.9 * (r - 0.25)) / 0.35 : r <= 1.7 ? 1 : r < 3.5 ? 1 - (0.75 * (r - 1.7)) / 1.8 : 0.25;
    // Energy of the speech itself, and how much of it is actually voiced.
    const frames = frameRms(pcm16, sampleRate, 20);
    const first = Math.floor((stats.speechStartMs ?? 0) / 20);
    const last = Math.max(first + 1, Math.ceil((stats.speechEndMs ?? 0) / 20));
    const speech = frames.slice(first, last);
    const energyOf = (fs: readonly number[]): number => Math.sqrt(fs.reduce((s, f) => s + f * f, 0) / Math.max(1, fs.length));
    const active = energyOf(speech);
    const energy = clamp01((active - SILENCE_RMS) / 0.04);
    const continuity = clamp01(0.3 + (1.4 * (stats.voicedMs ?? 0)) / spanMs);
    quality = timing * energy * continuity;

    // Each word gets its share of the speech (by length, at least 200 ms): quiet stretches score lower.
    const weights = refWords.map((w) => [...w].length + 1);
    const total = weights.reduce((a, b) => a + b, 0) || 1;
    let at = 0;
    perWord = refWords.map((_, i) => {
      const share = (weights[i]! / total) * speech.length;
      const mid = at + share / 2;
      at += share;
      const half = Math.max(5, share / 2);
      const local = energyOf(speech.slice(Math.max(0, Math.floor(mid - half)), Math.ceil(mid + half)));
      return clamp01(local / Math.max(VOICED_FRAME_RMS, 0.35 * active));
    });
  }

  const scored = refWords.map((word, i) => {
    const v = wordHash(word, i);
    if (silent) return { word, score: Math.floor(v * 12) };
    const hard = Math.min(0.4, 0.05 * Math.max(0, [...word].length - 6)); // long words are harder
    const raw = 60 + 35 * v * (1 - hard);
    return { word, score: Math.max(0, Math.min(100, Math.round(raw * quality * (0.4 + 0.6 * perWord[i]!)))) };
  });
  let score: number;
  if (scored.length) {
    const weights = scored.map((w) => Math.min(8, [...w.word].length));
    const sum = weights.reduce((a, b) => a + b, 0);
    score = Math.round(scored.reduce((s, w, i) => s + w.score * weights[i]!, 0) / sum);
  } else {
    score = silent ? 0 : Math.round(quality * (60 + 35 * (stats.fingerprint / 2 ** 32)));
  }
  return { score, words: scored };
}

export class SimulatedPronunciationProvider extends SimulatedBase implements PronunciationProvider {
  async assess(req: PronunciationRequest, opts?: CallOptions): Promise<PronunciationResult> {
    await this.latency(opts);
    return assess(req);
  }
}

// ---------------------------------------------------------------------------------------------

/** The five simulated providers, sharing the latency settings. */
export function createSimulatedProviders(opts: SimulatedOptions = {}): Providers {
  return {
    conversation: new SimulatedConversationProvider(opts),
    stt: new SimulatedSttProvider(opts),
    tts: new SimulatedTtsProvider(opts),
    pronunciation: new SimulatedPronunciationProvider(opts),
    translation: new SimulatedTranslationProvider(opts),
  };
}
