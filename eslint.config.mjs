// ESLint for the front end (extension/): ESLint's and typescript-eslint's recommended
// rules, with type information (floating promises, unsafe `any`, misused promises).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['.venv*/', 'lib/', 'kernel_magics/', 'tests/', 'extension/style/']),
  {
    files: ['extension/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `void promise` marks a promise left to run on its own (errors are shown inside).
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          ignoreVoid: true,
          // node:test runs the suites and tests it is handed; nothing awaits them.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test'] }
          ]
        }
      ],
      // JupyterLab's token pattern: an interface and a namespace of the same name.
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      curly: ['error', 'all'],
      eqeqeq: ['error', 'smart']
    }
  },
  {
    files: ['eslint.config.mjs'],
    extends: [js.configs.recommended]
  }
);
