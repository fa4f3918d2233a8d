// A Ruleset in nft's declarative syntax, the way `nft list table` reads: for people and golden
// files. Loading it with `nft -f` only adds (a table block never flushes what is already there);
// transactions (transaction.ts) are what actually change the kernel.
import {
  NFT_FAMILY, baseSpecText, checkName, mapElementText, mapTypeText, quoteComment, ruleLines, type Ruleset,
} from './objects.js';

export function serialize(ruleset: Ruleset): string {
  const out = [`table ${NFT_FAMILY} ${checkName(ruleset.table)} {`];
  const block = (head: string, body: string[]) => out.push(`\t${head} {`, ...body.map((l) => `\t\t${l}`), '\t}', '');
  for (const m of ruleset.maps) {
    const body = [mapTypeText(m)];
    if (m.counter) body.push('counter');
    if (m.comment) body.push(`comment ${quoteComment(m.comment)}`);
    if (m.elements.length) body.push(`elements = { ${m.elements.map(mapElementText).join(',\n\t\t\t     ')} }`);
    block(`map ${checkName(m.name)}`, body);
  }
  for (const s of ruleset.sets) {
    const body = [`type ${s.type}`];
    if (s.flags.length) body.push(`flags ${s.flags.join(',')}`);
    if (s.timeoutSeconds !== undefined) body.push(`timeout ${s.timeoutSeconds}s`);
    if (s.comment) body.push(`comment ${quoteComment(s.comment)}`);
    if (s.elements.length) body.push(`elements = { ${s.elements.join(', ')} }`);
    block(`set ${checkName(s.name)}`, body);
  }
  for (const c of ruleset.chains) {
    const body: string[] = [];
    if (c.comment) body.push(`comment ${quoteComment(c.comment)}`);
    if (c.base) body.push(baseSpecText(c.base));
    body.push(...c.rules.flatMap(ruleLines));
    block(`chain ${checkName(c.name)}`, body);
  }
  if (out.at(-1) === '') out.pop();
  out.push('}');
  return out.join('\n') + '\n';
}
