// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// Arrows point inward: app.ts/server.ts → routes → plugins → src. The core never reaches
// back out to the wiring, the store never knows the hub, and the browser client only the protocol.
const wiring = { group: ['**/plugins/*', '**/routes/*', '**/app.js', '**/server.js'], message: 'src/ is the core: it never imports the wiring (plugins/, routes/, app.ts, server.ts).' }
const noFastify = { group: ['fastify', 'fastify-*', '@fastify/*'], message: 'src/ is free of Fastify: adapt in plugins/ or routes/.' }

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'artifacts/', 'public/vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [wiring, noFastify] }] },
  },
  {
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [wiring, noFastify, { group: ['**/hub/*'], message: 'The store is below the hub: it never imports it.' }] }],
    },
  },
  {
    files: ['src/webhook/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [wiring, noFastify, { group: ['**/hub/*'], message: 'The webhook sits beside the hub, on the store: the hub calls it, never the other way.' }] },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!\\./[^/]+$|\\.\\./protocol/[^/]+$)', message: 'The typed client runs in browsers: it imports only its own files and src/protocol/.' }] },
      ],
    },
  },
)
