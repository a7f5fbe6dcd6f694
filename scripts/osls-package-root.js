'use strict';

// osls plugin (serverless.yml lists it first): one deployment artifact for every function, with the directory named by
// custom.packageRoot (functions) as the zip's root, so that Lambda imports rootmail.entrypoints.handlers.<name> from it.
//
// osls zips the service once (package.individually: false) with the paths of the repository: functions/rootmail/...
// This plugin moves every entry up out of custom.packageRoot right after osls has written that zip, before
// serverless-python-requirements adds the requirements beside the package (after:package:createDeploymentArtifacts).
// serverless-python-requirements' own `module:` does the same move, but only for functions packaged individually:
// one identical 24 MB zip per function.
//
// `osls deploy function -f NAME` zips that one function with the same patterns; its zip is moved up the same way.
// An entry outside custom.packageRoot stops the packaging: the patterns must take only what is under it.

const fs = require('fs');
const path = require('path');
const JSZip = require('jszip');

class PackageRoot {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    serverless.configSchemaHandler.defineCustomProperties({
      properties: { packageRoot: { type: 'string', pattern: '^[^/.][^/]*$' } },
    });
    this.hooks = {
      // osls's own hook on this event (core plugins run first) has just written the service zip.
      'package:createDeploymentArtifacts': () => this.moveUp(this.serverless.service.package.artifact),
      'after:package:function:package': () =>
        this.moveUp(this.serverless.service.getFunction(this.options.function).package.artifact),
    };
  }

  async moveUp(artifact) {
    const root = (this.serverless.service.custom || {}).packageRoot;
    if (!root) {
      throw new this.serverless.classes.Error('custom.packageRoot is not set (osls-package-root.js)');
    }
    if (!artifact) {
      throw new this.serverless.classes.Error(
        'osls-package-root.js: osls wrote no artifact to move up (package.individually must be false)'
      );
    }
    const zipPath = path.resolve(this.serverless.serviceDir, artifact);
    const source = await JSZip.loadAsync(await fs.promises.readFile(zipPath));
    const target = new JSZip();
    const outside = [];
    for (const entry of Object.values(source.files)) {
      if (entry.dir) continue;
      if (!entry.name.startsWith(`${root}/`)) {
        outside.push(entry.name);
        continue;
      }
      target.file(entry.name.slice(root.length + 1), await entry.async('nodebuffer'), {
        date: new Date(0), // as osls does: the same files make the same zip, so an unchanged service is not redeployed
        unixPermissions: entry.unixPermissions,
        createFolders: false,
      });
    }
    if (outside.length) {
      throw new this.serverless.classes.Error(
        `osls-package-root.js: ${path.basename(zipPath)} holds files outside ${root}/ ` +
          `(${outside.slice(0, 5).join(', ')}): the package patterns must take only what is under it`
      );
    }
    if (!Object.keys(target.files).length) {
      throw new this.serverless.classes.Error(`osls-package-root.js: nothing under ${root}/ in ${zipPath}`);
    }
    const written = target.generateNodeStream({
      platform: 'UNIX',
      compression: 'DEFLATE',
      compressionOptions: { level: 9 },
    });
    await new Promise((resolve, reject) => {
      written.on('error', reject);
      written.pipe(fs.createWriteStream(zipPath)).on('finish', resolve).on('error', reject);
    });
  }
}

module.exports = PackageRoot;
