/** Builds the pages' bundles into dist/ui once before the browser tier runs. */
import { buildUi } from "../../src/ui/build.ts";

export default async function setup(): Promise<void> {
  await buildUi();
}
