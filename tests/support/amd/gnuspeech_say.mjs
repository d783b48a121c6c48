// Speak lines for the answering-machine corpus's late part: GnuSpeech.
//
// Run as `node gnuspeech_say.mjs NODE_MODULES`, NODE_MODULES holding npm's
// `@echogarden/gnuspeech-wasm` (the synthesizer compiled to WebAssembly, with
// its English data; nothing is downloaded). Each line on standard input is
// `OUT_PATH<TAB>VOICE<TAB>TEXT`, VOICE one of GnuSpeech's (`male`, `female`,
// `large_child`); the WAV is written to OUT_PATH and `ok` (or the error) is
// printed on its own line.

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

const modules = process.argv[2]
const entry = join(modules, '@echogarden', 'gnuspeech-wasm', 'dist', 'exports', 'GnuSpeech.js')
const { synthesize } = await import(pathToFileURL(entry).href)
const VOICES = new Set(['male', 'female', 'large_child'])

for await (const line of createInterface({ input: process.stdin })) {
    const [path, voice, ...words] = line.split('\t')
    try {
        if (!VOICES.has(voice)) {
            throw new Error(`no such voice: gnuspeech/${voice}`)
        }
        const { audioData } = await synthesize(words.join(' '), { voice, tempo: 1.0 })
        await writeFile(path, audioData)
        console.log('ok')
    } catch (error) {
        // Reported to the corpus generator, which stops.
        console.log(`error: ${error.message ?? error}`)
    }
}
