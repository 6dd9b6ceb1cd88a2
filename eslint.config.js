// Lint: typescript-eslint's type-aware recommended rules, with the promise rules that catch a
// request left unanswered (a floating promise) or an async callback whose rejection nobody sees.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: {
          allowDefaultProject: [
            '*.js',
            'examples/*/*.mjs',
            'test/chaos/*.mjs',
            'test/support/*.mjs',
            'src/gateway/console/static/*.js',
          ],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Header and file-name rules match control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    // Tests, benchmarks and examples read JSON bodies as `any` and hand async callbacks to test
    // hooks; the promise rules above still apply to them.
    files: ['test/**', 'bench/**', 'examples/**', 'src/gateway/console/static/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The web console runs in the browser, as plain ES modules with no build step.
    files: ['src/gateway/console/static/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
