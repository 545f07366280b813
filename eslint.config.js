// ESLint for the TypeScript of the daemon, the clients, the addon's wrappers,
// the benchmarks and the tests; run by scripts/lint.sh with warnings as
// errors. Type-aware (typescript-eslint reads tsconfig.test.json, and the web
// console's own tsconfig), so it sees what the compiler sees: promises nobody
// awaits, switches that miss a case, values typed `any`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    // Generated code (gen/), build outputs and what scripts put in the checkout.
    ignores: ["gen/**", "dist/**", "native/build/**", ".tools/**", ".vmm/**", "run/**", "state/**", "bench/results/**", "**/node_modules/**"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: {
        project: ["./tsconfig.test.json", "./clients/web/tsconfig.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      // With verbatimModuleSyntax an import without `type` is kept in the
      // output: a type-only import must say so.
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-import-type-side-effects": "error",
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/prefer-promise-reject-errors": "error",
      // Only where it changes behaviour: a promise returned un-awaited from a
      // try block escapes its catch and finally.
      "@typescript-eslint/return-await": ["error", "error-handling-correctness-only"],
      // Protobuf enums are open: a value outside the enum arrives from the
      // wire as a number that TypeScript types `never` (shown as `?${n}`).
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNever: true }],
      // An async function without await is how an interface that returns a
      // promise gets a synchronous throw as a rejection; not a defect here.
      "@typescript-eslint/require-await": "off",
      // Validators reject control characters and the console strips terminal
      // escapes: control characters in those patterns are the point.
      "no-control-regex": "off",
      eqeqeq: ["error", "smart"],
    },
  },
  {
    // Tests read JSON that processes print (vmm-cli --json, grpcurl, curl):
    // `any` from JSON.parse is how they look into it.
    files: ["**/*.test.ts", "test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly", Buffer: "readonly", URL: "readonly" },
    },
  },
);
