/**
 * The curated workflow templates the club's API names, as ordinary specs over their inputs.
 * Chat steps ask for JSON and parse it (`extract: "json"`); list sizes come from the inputs and
 * bound the fan-out. Models are chosen per run (`models` in the request, see `request.ts`).
 */
import type { Template, TemplateInput } from "./templates.ts";

const text = (name: string, description: string, required = true): TemplateInput => ({
  name,
  description,
  type: "string",
  required,
});
const count = (name: string, description: string, max: number): TemplateInput => ({
  name,
  description,
  type: "integer",
  required: true,
  min: 1,
  max,
});
const ask = (prompt: string): Record<string, unknown> => ({
  messages: [
    { role: "system", content: "Answer with one JSON object and nothing else." },
    { role: "user", content: prompt },
  ],
});

/** The five templates of the club's API, in its order. */
export const TEMPLATES: readonly Template[] = [
  {
    key: "illustrated-story",
    title: "Illustrated story",
    description: "Write a story → split it into scenes → approve (gate) → illustrate each scene",
    inputs: [
      text("topic", "what the story is about"),
      count("scenes", "how many scenes (and pictures)", 16),
      text("style", "the pictures' style, e.g. oil painting, warm light"),
    ],
    spec: {
      steps: [
        {
          id: "story",
          kind: "inference",
          type: "chat",
          extract: "json",
          title: "Write the story",
          body: ask(
            'Write a short story about {{inputs.topic}} in {{inputs.scenes}} scenes. Return JSON: {"title": "…", "scenes": ["one paragraph per scene", …]}',
          ),
        },
        {
          id: "scenes",
          kind: "transform",
          op: "passthrough",
          title: "Split into scenes",
          input: "{{steps.story.output.scenes}}",
        },
        { id: "review", kind: "gate", title: "Approve the scenes", needs: ["scenes"] },
        {
          id: "illustrations",
          kind: "map",
          type: "image",
          title: "Illustrate each scene",
          needs: ["review"],
          over: "{{steps.scenes.output}}",
          limit: "{{inputs.scenes}}",
          body: { prompt: "{{item}} Style: {{inputs.style}}", response_format: "b64_json" },
        },
      ],
    },
  },
  {
    key: "image-variations",
    title: "Image variations",
    description: "Brainstorm N prompts → render them all",
    inputs: [
      text("subject", "what the images show"),
      count("count", "how many images", 16),
      text("vibe", "the mood they share"),
    ],
    spec: {
      steps: [
        {
          id: "prompts",
          kind: "inference",
          type: "chat",
          extract: "json",
          title: "Brainstorm prompts",
          body: ask(
            'Write {{inputs.count}} different image prompts showing {{inputs.subject}}, with a {{inputs.vibe}} vibe. Return JSON: {"prompts": ["…", …]}',
          ),
        },
        {
          id: "images",
          kind: "map",
          type: "image",
          title: "Render each prompt",
          over: "{{steps.prompts.output.prompts}}",
          limit: "{{inputs.count}}",
          body: { prompt: "{{item}}" },
        },
      ],
    },
  },
  {
    key: "storyboard-to-video",
    title: "Storyboard to video",
    description: "Plan shots → first frames → approve (gate) → animate each frame to video",
    inputs: [text("concept", "what the video is about"), count("shots", "how many shots", 8)],
    spec: {
      steps: [
        {
          id: "plan",
          kind: "inference",
          type: "chat",
          extract: "json",
          title: "Plan the shots",
          body: ask(
            'Plan a storyboard of {{inputs.shots}} shots for a short video: {{inputs.concept}}. Return JSON: {"shots": ["one sentence per shot", …]}',
          ),
        },
        {
          id: "frames",
          kind: "map",
          type: "image",
          title: "Draw each shot's first frame",
          over: "{{steps.plan.output.shots}}",
          limit: "{{inputs.shots}}",
          body: { prompt: "First frame: {{item}}", response_format: "b64_json" },
        },
        { id: "review", kind: "gate", title: "Approve the first frames", needs: ["frames"] },
        {
          id: "pairs",
          kind: "transform",
          op: "zip",
          title: "Pair shots with frames",
          needs: ["review"],
          input: { shot: "{{steps.plan.output.shots}}", frame: "{{steps.frames.output}}" },
        },
        {
          id: "clips",
          kind: "map",
          type: "video",
          title: "Animate each frame",
          over: "{{steps.pairs.output}}",
          body: {
            prompt: "{{item.shot}}",
            image: "data:image/png;base64,{{item.frame.result.data.0.b64_json}}",
          },
        },
      ],
    },
  },
  {
    key: "song-and-cover",
    title: "Song and cover",
    description: "Write lyrics and a brief → the track and its cover art, in parallel",
    inputs: [text("theme", "what the song is about"), text("genre", "its genre")],
    spec: {
      steps: [
        {
          id: "brief",
          kind: "inference",
          type: "chat",
          extract: "json",
          title: "Write lyrics and a brief",
          body: ask(
            'Write a {{inputs.genre}} song about {{inputs.theme}}. Return JSON: {"title": "…", "lyrics": "…", "style": "one line on the sound", "cover": "a prompt for the cover art"}',
          ),
        },
        {
          id: "track",
          kind: "inference",
          type: "music",
          title: "Make the track",
          body: {
            prompt: "{{inputs.genre}}: {{steps.brief.output.style}}",
            lyrics: "{{steps.brief.output.lyrics}}",
          },
        },
        {
          id: "cover",
          kind: "inference",
          type: "image",
          title: "Paint the cover",
          body: {
            prompt: 'Album cover for "{{steps.brief.output.title}}": {{steps.brief.output.cover}}',
          },
        },
      ],
    },
  },
  {
    key: "narrated-explainer",
    title: "Narrated explainer",
    description: "Write a script → narrate each line with text-to-speech",
    inputs: [
      text("topic", "what to explain"),
      count("lines", "how many lines", 32),
      text("voice", "the TTS voice (the engine's default when left out)", false),
    ],
    spec: {
      steps: [
        {
          id: "script",
          kind: "inference",
          type: "chat",
          extract: "json",
          title: "Write the script",
          body: ask(
            'Explain {{inputs.topic}} in {{inputs.lines}} short lines, one idea per line. Return JSON: {"lines": ["…", …]}',
          ),
        },
        {
          id: "narration",
          kind: "map",
          type: "tts",
          title: "Narrate each line",
          over: "{{steps.script.output.lines}}",
          limit: "{{inputs.lines}}",
          body: { input: "{{item}}", voice: "{{inputs.voice}}" },
        },
      ],
    },
  },
];
