declare const __APP_VERSION__: string | undefined;

/** This build's app version (package.json `version`, injected by Vite). */
export const APP_VERSION: string =
  typeof __APP_VERSION__ === "string" ? __APP_VERSION__ : "0.0.0-dev";

/** The push protocol version this build speaks (`hello.protocol`). */
export const PROTOCOL_VERSION = 1;
