// The layering of src/ (checked by test/unit/layering.test.ts, so CI fails on a violation).
// Each folder may import only the folders scripts/layers.cjs lists for it, node builtins and npm
// packages; no module of src/ may be part of an import cycle.
const path = require('node:path');
const { MAY_IMPORT } = require('./scripts/layers.cjs');

const folder = (name) => (name === 'version' ? '^src/version\\.ts$' : `^src/${name}/`);

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'an import cycle in src/', from: { path: '^src/' }, to: { circular: true } },
  ],
  allowed: [
    { from: { path: '^src/' }, to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] } },
    ...Object.entries(MAY_IMPORT).map(([name, deps]) => ({
      from: { path: folder(name) },
      to: { path: [folder(name), ...deps.map(folder)].join('|') },
    })),
  ],
  allowedSeverity: 'error',
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: path.join(__dirname, 'tsconfig.json') },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|node_modules)/' },
  },
};
