/**
 * What the simulated tutor says, per language: greetings, reactions, tips, the questions of each
 * scenario topic, corrections of common learner mistakes, and the words it never echoes.
 */
import type { SimulatedLanguage } from './language.js';

/** The scenario topics the tutor has questions for. */
export type Topic = 'cafe' | 'restaurant' | 'interview' | 'travel' | 'shopping' | 'general';

interface Correction {
  readonly re: RegExp;
  readonly tip: (m: RegExpMatchArray) => string;
}

/** Everything the tutor says in one language. */
export interface TutorPack {
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

/** The words of a space-separated list, as a set. */
export const wordSet = (s: string): ReadonlySet<string> => new Set(s.split(/\s+/).filter(Boolean));

const THIRD_PERSON: Readonly<Record<string, string>> = { have: 'has', do: 'does', go: 'goes', want: 'wants', like: 'likes', need: 'needs', work: 'works', live: 'lives' };

/** English words the tutor never echoes (also skipped in other languages). */
export const EN_STOP = wordSet(`a an the and or but so if of to in on at by for from with about as into than then there here this that these those
  i me my mine you your yours he him his she her it its we us our they them their what which who whom whose when where why how
  is am are was were be been being do does did have has had having will would shall should can could may might must
  not no yes yeah ok okay please thanks thank very really just too also some any much many more most lot lots
  i'm i'd i'll i've you're it's don't doesn't didn't can't won't that's there's let's like want get got go going`);

/** The tutor's phrases by language. */
export const PACKS: Readonly<Record<SimulatedLanguage, TutorPack>> = {
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
