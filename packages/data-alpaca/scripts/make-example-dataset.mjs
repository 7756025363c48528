// Writes data/example-alpaca.json: a small invented Alpaca dataset (review sentiment and text
// formatting) that a tiny model learns in minutes. Deterministic: same output on every run.
// Usage: node scripts/make-example-dataset.mjs [output-path]
/* global process, console, URL */
import { renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** @param {number} seed @returns {() => number} */
function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(20240611);
/**
 * @template T
 * @param {readonly T[]} list
 * @returns {T}
 */
function pick(list) {
  const item = list[Math.floor(random() * list.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

const products = [
  'wireless headphones', 'coffee maker', 'pair of running shoes', 'desk lamp', 'phone case', 'backpack',
  'blender', 'mechanical keyboard', 'water bottle', 'camping tent', 'electric kettle', 'office chair',
  'smart watch', 'rice cooker', 'bike helmet', 'yoga mat',
];
const movies = [
  'The Last Harbor', 'Midnight Circuit', 'Paper Lanterns', 'The Glass Orchard', 'Northbound', 'Seven Small Rooms',
  'A Quiet Storm', 'The Copper Key', 'Summer of Kites', 'Low Tide',
];
/** @typedef {'positive' | 'negative' | 'neutral'} Label */
/** @type {Record<Label, string[]>} */
const productPhrases = {
  positive: [
    'works perfectly and I use it every day', 'exceeded all my expectations', 'is worth every penny',
    'feels solid and well made', 'is the best purchase I made this year', 'arrived early and works great',
  ],
  negative: [
    'broke after two days', 'was a complete waste of money', 'stopped working within a week',
    'feels cheap and flimsy', 'is much worse than the photos suggest', 'arrived damaged and support never answered',
  ],
  neutral: [
    'does what it says, nothing more', 'is about average for the price', 'arrived on Tuesday in a brown box',
    'is fine, neither great nor bad', 'comes in three colours', 'is the same as my old one',
  ],
};
/** @type {Record<Label, string[]>} */
const moviePhrases = {
  positive: [
    'made me smile from start to finish', 'is a beautiful and moving film', 'has a brilliant cast and a clever plot',
    'was thrilling, I loved every minute', 'is the best film I have seen in years',
  ],
  negative: [
    'bored me to tears', 'is a confusing mess with wooden acting', 'was two hours I will never get back',
    'has a terrible script and a silly ending', 'was so dull that I left early',
  ],
  neutral: [
    'runs for about two hours', 'was released last spring', 'is an ordinary film, some parts work and some do not',
    'is a remake of an older movie', 'was shown in black and white',
  ],
};
const openers = ['', 'Honestly, ', 'In short, ', 'Well, '];
const sentimentInstructions = [
  'Classify the sentiment of this review as positive, negative, or neutral.',
  'What is the sentiment of the following review? Answer positive, negative, or neutral.',
  'Label the sentiment of the review: positive, negative, or neutral.',
];

/** @param {Label} label */
function review(label) {
  const opener = pick(openers);
  const text = random() < 0.5 ? `the ${pick(products)} ${pick(productPhrases[label])}.` : `${pick(movies)} ${pick(moviePhrases[label])}.`;
  const sentence = opener + text;
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

const words = [
  'red', 'blue', 'green', 'river', 'mountain', 'quiet', 'morning', 'coffee', 'garden', 'window', 'paper', 'train',
  'happy', 'little', 'bright', 'stone', 'cloud', 'orange', 'music', 'winter', 'summer', 'bread', 'table', 'lamp',
];
const items = [
  'apples', 'pears', 'plums', 'milk', 'eggs', 'bread', 'rice', 'beans', 'tea', 'salt', 'carrots', 'onions',
  'cheese', 'butter', 'lemons', 'honey',
];

/** @param {number} min @param {number} max @param {readonly string[]} list */
function phrase(min, max, list) {
  const n = min + Math.floor(random() * (max - min + 1));
  /** @type {string[]} */
  const out = [];
  while (out.length < n) {
    const w = pick(list);
    if (!out.includes(w)) out.push(w);
  }
  return out;
}

/** @typedef {{ instruction: string, input: string, output: string }} AlpacaRecord */
/** @type {AlpacaRecord[]} */
const records = [];
const seen = new Set();
/** @param {AlpacaRecord} record */
function add(record) {
  const key = JSON.stringify(record);
  if (seen.has(key)) return false;
  seen.add(key);
  records.push(record);
  return true;
}

for (const label of /** @type {Label[]} */ (['positive', 'negative', 'neutral'])) {
  let made = 0;
  while (made < 50) {
    const text = review(label);
    // About one in five puts the review into the instruction and has no input.
    const record =
      random() < 0.2
        ? { instruction: `Classify the sentiment of this review as positive, negative, or neutral: "${text}"`, input: '', output: label }
        : { instruction: pick(sentimentInstructions), input: text, output: label };
    if (add(record)) made += 1;
  }
}

/** @type {Array<[string, () => string, (input: string) => string]>} */
const formatTasks = [
  ['Convert to uppercase.', () => phrase(3, 6, words).join(' '), (input) => input.toUpperCase()],
  ['Reverse the word order.', () => phrase(3, 6, words).join(' '), (input) => input.split(' ').reverse().join(' ')],
  [
    'Format as a JSON list.',
    () => phrase(2, 5, items).join(', '),
    (input) => `[${input.split(', ').map((s) => JSON.stringify(s)).join(', ')}]`,
  ],
];
for (const [instruction, makeInput, solve] of formatTasks) {
  let made = 0;
  while (made < 35) {
    const input = makeInput();
    if (add({ instruction, input, output: solve(input) })) made += 1;
  }
}

for (let i = records.length - 1; i > 0; i -= 1) {
  const j = Math.floor(random() * (i + 1));
  const a = /** @type {AlpacaRecord} */ (records[i]);
  records[i] = /** @type {AlpacaRecord} */ (records[j]);
  records[j] = a;
}

const out = process.argv[2] ?? fileURLToPath(new URL('../data/example-alpaca.json', import.meta.url));
const temp = `${out}.tmp-${process.pid}`;
writeFileSync(temp, `${JSON.stringify(records, null, 2)}\n`);
renameSync(temp, out);
console.log(`wrote ${records.length} records to ${out}`);
