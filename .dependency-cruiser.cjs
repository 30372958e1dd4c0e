/**
 * The import rules of ARCHITECTURE.md ("Import rules"), checked by dependency-cruiser: the one-way
 * flow edge → sessions → turns → upstream → store, with limits/, protocol/, config/ and client/
 * below the layers that use them. test/unit/architecture.test.ts runs this with the suite, so a
 * later change cannot quietly break it; `npx depcruise src` prints the same report.
 */
const layer = (name) => `^src/${name}/`;
const forbid = (from, to, comment) => ({
  name: `${from}-not-${to.join('-')}`,
  comment,
  severity: 'error',
  from: { path: layer(from) },
  to: { path: `^src/(${to.join('|')})/` },
});

module.exports = {
  forbidden: [
    forbid('sessions', ['edge'], 'sessions/ never imports edge/'),
    forbid('turns', ['edge', 'sessions'], 'turns/ sits below the sessions that run them'),
    forbid('upstream', ['edge', 'sessions', 'turns'], 'upstream/ never imports sessions/ or edge/'),
    forbid('store', ['edge', 'sessions', 'turns', 'upstream'], 'store/ never imports upstream/, sessions/ or edge/'),
    forbid('telemetry', ['edge', 'sessions', 'turns', 'upstream'], 'telemetry/ stays below what it measures'),
    forbid('limits', ['edge', 'sessions', 'turns', 'upstream', 'store', 'telemetry', 'simulator'], 'limits/: pure algorithms, no I/O'),
    forbid('protocol', ['edge', 'sessions', 'turns', 'upstream', 'store', 'telemetry', 'simulator', 'limits', 'config', 'client'], 'protocol/ imports nothing of the layers above it'),
    forbid('config', ['edge', 'sessions', 'turns', 'upstream', 'store', 'telemetry', 'simulator', 'client'], 'config/ imports nothing of the layers above it'),
    forbid('client', ['edge', 'sessions', 'turns', 'upstream', 'store', 'telemetry', 'simulator', 'limits', 'config'], 'client/ ships alone as a package: it imports only protocol/'),
    {
      name: 'simulator-only-from-root',
      comment: 'nothing in the product imports simulator/ except the composition root (src/*.ts)',
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: '^src/simulator/' },
      to: { path: '^src/simulator/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
