/**
 * The simulator's phrase book: common phrases and words in every simulated language, used by the
 * simulated translation and by the tutor's "you can say …" tips and canned answers.
 */
import { SIMULATED_LANGUAGES, type SimulatedLanguage } from './language.js';

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

/** One row of the phrase book. */
export interface Entry {
  /** Variants per language, normalised for matching. */
  readonly keys: Readonly<Partial<Record<SimulatedLanguage, readonly string[]>>>;
  /** Display form per language. */
  readonly forms: Readonly<Partial<Record<SimulatedLanguage, string>>>;
}

/** Lower case, no diacritics, no punctuation, single spaces: the matching key of a phrase. */
export function normalizePhrase(text: string): string {
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

/** Whole phrases. */
export const PHRASES = parseRows(PHRASE_ROWS);
/** Single words, for word-by-word translation. */
export const WORDS = parseRows(WORD_ROWS);

/** Finds `key` among the entries, in `source` if known, else in any language (English first). */
export function lookup(entries: readonly Entry[], key: string, source: SimulatedLanguage | undefined): { entry: Entry; lang: SimulatedLanguage } | undefined {
  const langs = source ? [source] : SIMULATED_LANGUAGES;
  for (const lang of langs) {
    const entry = entries.find((e) => e.keys[lang]?.includes(key));
    if (entry) return { entry, lang };
  }
  return undefined;
}

/** The row whose first English variant is `en`. */
export function phraseRow(en: string): Entry | undefined {
  const key = normalizePhrase(en);
  return PHRASES.find((e) => e.keys.en?.[0] === key);
}
