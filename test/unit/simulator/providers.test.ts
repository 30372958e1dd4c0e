import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeWav } from '../../../src/audio/wav.js';
import { synthesizeSpeech } from '../../../src/simulator/speech-synth.js';
import type { AudioInput, ChatMessage, ConversationRequest, Providers } from '../../../src/upstream/provider.js';
import { UpstreamError } from '../../../src/upstream/provider.js';
import { createSimulatedProviders, SIMULATED_LANGUAGES } from '../../../src/simulator/index.js';

const sim = createSimulatedProviders();

function pcmInput(data: Buffer, sampleRate = 16000, channels = 1): AudioInput {
  return { data, format: 'pcm16', sampleRate, channels };
}

function speech(text: string, language = 'en', sampleRate = 16000): AudioInput {
  return pcmInput(synthesizeSpeech(text, { language, sampleRate }), sampleRate);
}

const silence = (seconds: number, sampleRate = 16000): AudioInput => pcmInput(Buffer.alloc(Math.round(seconds * sampleRate) * 2), sampleRate);

function conversation(language: string, scenario: string | undefined, ...turns: string[]): ConversationRequest {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are a friendly speaking tutor.' }];
  turns.forEach((content, i) => messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', content }));
  return { language, scenario, messages };
}

const sentences = (text: string): number => (text.replace(/\(Note:.*\)$/, '').match(/[.!?。！？]+/g) ?? []).length;

describe('simulated tutor', () => {
  it('greets in Spanish on the first turn and names the scenario', async () => {
    const reply = await sim.conversation.reply(conversation('es', 'ordering coffee', 'Hola'));
    expect(reply).toMatch(/^¡Hola/);
    expect(reply).toContain('café');
    expect(reply).toMatch(/¿[^?]+\?$/); // ends with a Spanish question
    expect(sentences(reply)).toBeLessThanOrEqual(3);
  });

  it('reacts to the learner in Spanish, echoing a word, and asks a café question', async () => {
    const first = await sim.conversation.reply(conversation('es', 'ordering coffee', 'Hola'));
    const reply = await sim.conversation.reply(conversation('es', 'ordering coffee', 'Hola', first, 'Me gustaría una tostada también'));
    expect(reply).toContain('«tostada»');
    expect(reply).toMatch(/¿[^?]+\?$/);
    expect(reply).not.toMatch(/^¡Hola/); // no second greeting
    expect(sentences(reply)).toBeLessThanOrEqual(3);
  });

  it('is deterministic for the same conversation', async () => {
    const req = conversation('es', 'ordering coffee', 'Hola', '¡Hola! ¿Qué te gustaría tomar?', 'Un café con leche, por favor');
    const a = await sim.conversation.reply(req);
    const b = await sim.conversation.reply(structuredClone(req));
    expect(b).toBe(a);
  });

  it('does not repeat a question already asked', async () => {
    const turns = ['Hi'];
    for (let i = 0; i < 3; i++) {
      turns.push(await sim.conversation.reply(conversation('en', 'job interview', ...turns)));
      turns.push(`Answer number ${i + 1} about my experience`);
    }
    const questions = turns.filter((_, i) => i % 2 === 1).map((t) => t.match(/[^.!?]*\?$/)?.[0]);
    expect(new Set(questions).size).toBe(3);
  });

  it('mentions a scenario of its own verbatim', async () => {
    const reply = await sim.conversation.reply(conversation('fr', 'visiting the zoo', 'Bonjour', 'Salut !', 'Je veux voir les girafes'));
    expect(reply).toContain('visiting the zoo');
    expect(reply).toContain('« girafes »');
  });

  it('answers in each supported language, in at most three sentences', async () => {
    const markers: Record<string, RegExp> = {
      en: /\b(Hi|Hello)\b/, es: /¡Hola/, fr: /\b(Bonjour|Salut)\b/, de: /\bHallo\b/, it: /\bCiao\b/, pt: /^Olá,/, ja: /こんにちは/,
    };
    const replies = new Set<string>();
    for (const lang of SIMULATED_LANGUAGES) {
      const reply = await sim.conversation.reply(conversation(lang, 'travel', 'hello'));
      expect(reply, lang).toMatch(markers[lang]!);
      expect(sentences(reply), reply).toBeLessThanOrEqual(3);
      replies.add(reply);
    }
    expect(replies.size).toBe(SIMULATED_LANGUAGES.length);
  });

  it('uses the primary subtag (pt-BR) and falls back to English with a note', async () => {
    expect(await sim.conversation.reply(conversation('pt-BR', 'shopping', 'Olá'))).toMatch(/^Olá/);
    const reply = await sim.conversation.reply(conversation('ko', undefined, '안녕하세요'));
    expect(reply).toMatch(/^(Hi|Hello)/);
    expect(reply).toContain('doesn\'t speak “ko”');
    expect(reply).toContain('English');
  });

  it('offers gentle corrections', async () => {
    const en = await sim.conversation.reply(conversation('en', 'job interview', 'Hi', 'Hello!', 'I am agree with the plan'));
    expect(en).toContain('“I agree”');
    const es = await sim.conversation.reply(conversation('es', undefined, 'Hola', '¡Hola!', 'Hoy yo soy cansado'));
    expect(es).toContain('«estoy cansado»');
    const de = await sim.conversation.reply(conversation('de', 'ordering coffee', 'Hallo', 'Hallo!', 'Ich will einen Kaffee'));
    expect(de).toContain('„Ich möchte …“');
  });

  it('suggests the phrase in the session language when the learner uses English', async () => {
    const reply = await sim.conversation.reply(conversation('es', 'ordering coffee', 'Hola', '¡Hola!', 'thank you'));
    expect(reply).toContain('«gracias»');
  });

  it('asks again when it heard nothing', async () => {
    const reply = await sim.conversation.reply(conversation('en', 'travel', 'Hi', 'Hello!', ''));
    expect(reply).toMatch(/catch that|missed that/);
  });
});

describe('simulated STT', () => {
  it('returns "" for silence and near-silence', async () => {
    expect(await sim.stt.transcribe({ audio: silence(2), language: 'en' })).toBe('');
    const hiss = Buffer.alloc(32000);
    for (let i = 0; i < 16000; i++) hiss.writeInt16LE(((i * 7919) % 101) - 50, i * 2); // about -56 dBFS
    expect(await sim.stt.transcribe({ audio: pcmInput(hiss), language: 'en' })).toBe('');
    expect(await sim.stt.transcribe({ audio: pcmInput(Buffer.alloc(0)), language: 'en' })).toBe('');
  });

  it('transcribes speech to a sentence in the requested language, the same for the same audio', async () => {
    const audio = speech('I would like a coffee with milk, please.');
    const text = await sim.stt.transcribe({ audio, language: 'en' });
    expect(text.length).toBeGreaterThan(3);
    expect(await sim.stt.transcribe({ audio: pcmInput(Buffer.from(audio.data)), language: 'en' })).toBe(text);
    const es = await sim.stt.transcribe({ audio: speech('Quisiera un café con leche, por favor.', 'es'), language: 'es' });
    expect(es).toMatch(/[áéíóúñ¿¡]|\b(el|la|un|una|de|por|con|y)\b/i);
    expect(await sim.stt.transcribe({ audio: speech('コーヒーをください。', 'ja'), language: 'ja' })).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/u);
  });

  it('gives the same transcript for the same audio as WAV or PCM, mono or stereo', async () => {
    const pcm = synthesizeSpeech('Where is the train station?', { sampleRate: 16000 });
    const text = await sim.stt.transcribe({ audio: pcmInput(pcm), language: 'en' });
    const wav: AudioInput = { data: encodeWav(pcm, 16000), format: 'wav', sampleRate: 16000, channels: 1 };
    expect(await sim.stt.transcribe({ audio: wav, language: 'en' })).toBe(text);
    const stereo = Buffer.alloc(pcm.length * 2);
    for (let i = 0; i < pcm.length / 2; i++) {
      stereo.writeInt16LE(pcm.readInt16LE(i * 2), i * 4);
      stereo.writeInt16LE(pcm.readInt16LE(i * 2), i * 4 + 2);
    }
    expect(await sim.stt.transcribe({ audio: pcmInput(stereo, 16000, 2), language: 'en' })).toBe(text);
  });

  it('gives longer sentences for longer speech', async () => {
    const short = await sim.stt.transcribe({ audio: speech('Hello.'), language: 'en' });
    const long = await sim.stt.transcribe({
      audio: speech('Last summer we travelled along the coast by train, stopping in small towns, eating fresh fish and swimming every single day.'),
      language: 'en',
    });
    expect(short.split(' ').length).toBeLessThanOrEqual(4);
    expect(long.split(' ').length).toBeGreaterThan(10);
  });

  it('reports an invalid WAV as a 400 upstream error', async () => {
    const err = await sim.stt
      .transcribe({ audio: { data: Buffer.from('not a wav'), format: 'wav', sampleRate: 16000, channels: 1 }, language: 'en' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ upstream: 'stt', status: 400 });
    expect((err as Error).message).toMatch(/invalid audio: .*RIFF/);
  });
});

describe('simulated TTS', () => {
  it('synthesizes 24 kHz PCM16 speech for the text and voice', async () => {
    const res = await sim.tts.speak({ text: 'Buenos días, ¿qué tal?', voice: 'nova', language: 'es' });
    expect(res.sampleRate).toBe(24000);
    expect(res.audio.length % 2).toBe(0);
    expect(res.audio.equals(synthesizeSpeech('Buenos días, ¿qué tal?', { sampleRate: 24000, voice: 'nova', language: 'es' }))).toBe(true);
  });
});

describe('simulated pronunciation', () => {
  const reference = 'I would like a coffee, please.';

  it('scores silence low, with one entry per reference word', async () => {
    const res = await sim.pronunciation.assess({ audio: silence(2), referenceText: reference, language: 'en' });
    expect(res.score).toBeLessThan(20);
    expect(res.words.map((w) => w.word)).toEqual(['I', 'would', 'like', 'a', 'coffee', 'please']);
    for (const w of res.words) expect(w.score).toBeLessThan(20);
  });

  it('scores speech of the right length 50-100, per word and overall, as integers', async () => {
    for (const [text, language] of [[reference, 'en'], ['¿Dónde está la estación de tren?', 'es'], ['Ich möchte einen Kaffee mit Milch.', 'de']] as const) {
      const res = await sim.pronunciation.assess({ audio: speech(text, language), referenceText: text, language });
      expect(res.score, text).toBeGreaterThanOrEqual(50);
      expect(res.score, text).toBeLessThanOrEqual(100);
      expect(Number.isInteger(res.score)).toBe(true);
      expect(res.words.length).toBe(text.split(' ').length);
      for (const w of res.words) {
        expect(w.score, `${text}: ${w.word}`).toBeGreaterThanOrEqual(50);
        expect(w.score).toBeLessThanOrEqual(100);
        expect(Number.isInteger(w.score)).toBe(true);
      }
      expect(new Set(res.words.map((w) => w.score)).size).toBeGreaterThan(1); // per-word variation
    }
  });

  it('scores audio far too short for the reference low', async () => {
    const res = await sim.pronunciation.assess({
      audio: speech('Hi.'),
      referenceText: 'I would like a large coffee with milk and two sugars, please.',
      language: 'en',
    });
    expect(res.score).toBeLessThan(40);
  });

  it('is deterministic', async () => {
    const req = { audio: speech(reference), referenceText: reference, language: 'en' };
    expect(await sim.pronunciation.assess(req)).toEqual(await sim.pronunciation.assess(req));
  });
});

describe('simulated translation', () => {
  const t = (text: string, targetLanguage: string, sourceLanguage?: string): Promise<string> =>
    sim.translation.translate({ text, targetLanguage, sourceLanguage });

  it('translates common phrases case- and punctuation-insensitively', async () => {
    expect(await t('thank you', 'es', 'en')).toBe('gracias');
    expect(await t('Thank you!', 'es', 'en')).toBe('¡Gracias!');
    expect(await t('How are you?', 'es')).toBe('¿Cómo estás?');
    expect(await t('I would like a coffee.', 'fr', 'en')).toBe('Je voudrais un café.');
    expect(await t('where is the STATION', 'de')).toBe('wo ist der Bahnhof');
    expect(await t('Where is the station?', 'ja')).toBe('駅はどこですか？');
    expect(await t('gracias', 'en', 'es')).toBe('thank you');
    expect(await t('Merci beaucoup', 'it')).toBe('Grazie mille');
    expect(await t('Good morning', 'pt')).toBe('Bom dia');
  });

  it('falls back to word by word for known words', async () => {
    expect(await t('water and bread', 'pt', 'en')).toBe('água e pão');
    expect(await t('The dog is very big.', 'es', 'en')).toBe('El perro es muy grande.');
  });

  it('marks anything else as simulated', async () => {
    expect(await t('The weather is lovely today', 'fr', 'en')).toBe('[fr] The weather is lovely today');
    expect(await t('hello', 'ko', 'en')).toBe('[ko] hello');
    expect(await t('hello', 'en', 'en')).toBe('hello');
  });
});

describe('latency and cancellation', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const calls = (p: Providers, signal?: AbortSignal): Promise<unknown>[] => [
    p.conversation.reply(conversation('en', undefined, 'Hi'), { signal }),
    p.stt.transcribe({ audio: silence(0.1), language: 'en' }, { signal }),
    p.tts.speak({ text: 'Hi', language: 'en' }, { signal }),
    p.pronunciation.assess({ audio: silence(0.1), referenceText: 'Hi', language: 'en' }, { signal }),
    p.translation.translate({ text: 'Hi', targetLanguage: 'es' }, { signal }),
  ];

  it('rejects with an AbortError when already aborted, even without latency', async () => {
    const ac = new AbortController();
    ac.abort();
    for (const call of calls(createSimulatedProviders(), ac.signal)) {
      await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    }
  });

  it('rejects with an AbortError when aborted during the latency wait', async () => {
    const ac = new AbortController();
    const pending = calls(createSimulatedProviders({ latencyMs: 60_000 }), ac.signal).map((p) => p.catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 5));
    ac.abort(new Error('session closed'));
    for (const err of await Promise.all(pending)) {
      expect(err).toMatchObject({ name: 'AbortError' });
      expect((err as Error).cause).toMatchObject({ message: 'session closed' });
    }
  });

  it('waits latencyMs before answering', async () => {
    vi.useFakeTimers();
    let done = false;
    const call = createSimulatedProviders({ latencyMs: 200 }).translation.translate({ text: 'thank you', targetLanguage: 'de' }).then((r) => {
      done = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(199);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(await call).toBe('danke');
  });

  it('jitters the latency with the random source', async () => {
    vi.useFakeTimers();
    let done = false;
    void createSimulatedProviders({ latencyMs: 100, random: () => 1 }).tts.speak({ text: 'Hi', language: 'en' }).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(124);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });
});
