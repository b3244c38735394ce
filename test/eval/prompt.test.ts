import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/util/errors.js';
import { parseTaskConfig, loadTaskConfig, builtinTasks, type TaskConfig } from '../../src/eval/config.js';
import { buildContext, docRequests, moveTrailingSpace, sampleFewshot, docGold } from '../../src/eval/prompt.js';
import { render, templateFields } from '../../src/eval/template.js';
import { loadTask, TASK_LOADERS, type TaskDoc } from '../../src/data/tasks/index.js';
import { dataDir } from '../../src/util/paths.js';

const yaml = `
task: toy
dataset: { loader: fpb, split: test }
doc_to_text: "Q: {{text}}\\nA:"
doc_to_choice: [bad, good]
doc_to_target: "{{label}}"
num_fewshot: 2
fewshot_split: train
metrics: [acc, acc_norm]
`;
const cfg = parseTaskConfig('/x/toy.yaml', yaml);
const doc = (id: string, text: string, label: string): TaskDoc => ({ id, fields: { text, label } });

describe('templates', () => {
  it('substitutes {{field}} and rejects unknown fields naming where', () => {
    expect(render('a {{x}} b {{ y }}', { x: '1', y: '2' }, 'w')).toBe('a 1 b 2');
    expect(templateFields('{{a}} {{b}}')).toEqual(['a', 'b']);
    expect(() => render('{{nope}}', { x: '1' }, 'file.yaml doc_to_text')).toThrow(/file\.yaml doc_to_text.*\{\{nope\}\}/);
  });
});

describe('task config', () => {
  it('fills lm-eval defaults', () => {
    expect(cfg.target_delimiter).toBe(' ');
    expect(cfg.fewshot_delimiter).toBe('\n\n');
    expect(cfg.output_type).toBe('multiple_choice');
  });
  it('collects every problem with its key', () => {
    let err: unknown;
    try {
      parseTaskConfig('/x/bad.yaml', 'dataset: { loader: nope }\ndoc_to_choice: [one]\nnum_fewshot: -1\nfewshot_split: test\nmetrics: [bleu]\nextra: 1\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const m = (err as Error).message;
    for (const k of ['/x/bad.yaml', 'dataset.loader', 'doc_to_choice', 'num_fewshot', 'fewshot_split', 'metrics', 'extra', 'doc_to_text']) expect(m).toContain(k);
  });
  it('every shipped task parses and renders a real document', async () => {
    const names = await builtinTasks();
    // one evaluation config per task of the task list, and none without a task
    expect(names).toEqual(Object.keys(TASK_LOADERS).sort());
    expect(names).toEqual(expect.arrayContaining(['arc_easy', 'fiqa_sa', 'fpb', 'headline', 'lambada', 'ner', 'piqa']));
    for (const n of names) {
      const c = await loadTaskConfig(n);
      const data = await loadTask(c.dataset.loader, dataDir());
      const d = data.splits[c.dataset.split]![0]!;
      const reqs = docRequests(c, d, buildContext(c, d, []));
      expect(reqs.length).toBeGreaterThan(0);
      for (const r of reqs) expect(r.continuation.startsWith(c.target_delimiter)).toBe(true);
      if (c.output_type === 'multiple_choice') expect(docGold(c, d)).toBe(d.gold);
    }
  });
});

describe('prompt building (lm-evaluation-harness rules)', () => {
  it('joins few-shot examples with fewshot_delimiter, each as text + target_delimiter + target, in order', () => {
    const shots = [doc('a', 'one', 'good'), doc('b', 'two', 'bad')];
    expect(buildContext(cfg, doc('t', 'three', 'good'), shots)).toBe('Q: one\nA: good\n\nQ: two\nA: bad\n\nQ: three\nA:');
    expect(buildContext({ ...cfg, fewshot_delimiter: '###', target_delimiter: '=' } as TaskConfig, doc('t', 'x', 'bad'), shots)).toBe(
      'Q: one\nA:=good###Q: two\nA:=bad###Q: x\nA:',
    );
    expect(buildContext({ ...cfg, description: 'D\n' }, doc('t', 'x', 'bad'), [])).toBe('D\nQ: x\nA:');
  });

  it('makes one request per choice with the target delimiter in front', () => {
    const r = docRequests(cfg, doc('t', 'x', 'bad'), 'CTX');
    expect(r).toEqual([
      { context: 'CTX', continuation: ' bad' },
      { context: 'CTX', continuation: ' good' },
    ]);
  });

  it('moves trailing whitespace of the context to the continuation', () => {
    expect(moveTrailingSpace({ context: 'Answer: ', continuation: 'yes' })).toEqual({ context: 'Answer:', continuation: ' yes' });
    expect(moveTrailingSpace({ context: 'A:\n \n', continuation: ' x' })).toEqual({ context: 'A:', continuation: '\n \n x' });
    expect(moveTrailingSpace({ context: 'A:', continuation: ' x' })).toEqual({ context: 'A:', continuation: ' x' });
  });

  it('samples few-shot examples deterministically per (seed, doc), without the doc itself', () => {
    const pool = Array.from({ length: 30 }, (_, i) => doc(`p${i}`, `t${i}`, 'good'));
    const d = pool[3]!;
    const a = sampleFewshot(pool, 5, 1234, d);
    expect(sampleFewshot(pool, 5, 1234, d)).toEqual(a);
    expect(new Set(a.map((x) => x.id)).size).toBe(5);
    expect(a.map((x) => x.id)).not.toContain(d.id);
    const other = sampleFewshot(pool, 5, 99, d);
    expect(other.map((x) => x.id)).not.toEqual(a.map((x) => x.id));
    // every doc still its own-free over many draws
    for (const q of pool) expect(sampleFewshot(pool, 29, 1, q).map((x) => x.id)).not.toContain(q.id);
    expect(() => sampleFewshot(pool.slice(0, 3), 5, 1, d)).toThrow(UserError);
  });

  it('draws few-shot examples for test docs from the train split only', async () => {
    const data = await loadTask('fpb', dataDir());
    const testIds = new Set(data.splits.test!.map((d) => d.id));
    const testTexts = new Set(data.splits.test!.map((d) => d.fields.text));
    for (const d of data.splits.test!.slice(0, 50)) {
      for (const s of sampleFewshot(data.splits.train!, 5, 1234, d)) {
        expect(testIds.has(s.id)).toBe(false);
        expect(testTexts.has(s.fields.text)).toBe(false);
      }
    }
  });
});
