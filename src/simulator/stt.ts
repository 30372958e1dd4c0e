/**
 * The simulated speech-to-text: picks a plausible learner sentence in the session language whose
 * length fits the speech in the audio (several for a long recording); "" on silence. The choice is
 * a function of the audio's fingerprint, so the same audio always gives the same transcript.
 */
import type { CallOptions, SttProvider, SttRequest } from '../upstream/provider.js';
import { decodeInput, MIN_SPEECH_MS, SILENCE_RMS } from './input-audio.js';
import { mix, supportedLanguage, type SimulatedLanguage } from './language.js';
import { pcm16Stats } from './signal.js';
import { latency, type SimulatedTiming } from './timing.js';

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

/** The simulated transcript of `req.audio`. */
export function transcribeAudio(req: SttRequest): string {
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

export class SimulatedSttProvider implements SttProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  async transcribe(req: SttRequest, opts?: CallOptions): Promise<string> {
    await latency(this.timing, opts?.signal);
    return transcribeAudio(req);
  }
}
