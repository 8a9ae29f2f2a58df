; Inno Setup 6 script: the Windows installer of the Mynagate card bridge,
; MynagateCardBridgeSetup.exe. Build on Windows, after PyInstaller:
;
;   pyinstaller --noconfirm card_bridge\packaging\mynagate-card-bridge.spec
;   iscc /DAppVersion=0.1.0 /DProviderOrigin=https://id.example.ed.jp card_bridge\packaging\mynagate-card-bridge.iss
;
; /DProviderOrigin bakes the school's provider in (then the wizard does not ask); without it
; the wizard asks for it, and a silent install takes it as /ORIGIN=https://id.example.ed.jp:
;   MynagateCardBridgeSetup.exe /VERYSILENT /ORIGIN=https://id.example.ed.jp
; Autostart: a value in ...\CurrentVersion\Run (HKLM for an install for all users, HKCU for
; one user), so the bridge starts at every sign-in to Windows. See docs/card-bridge.md.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef ProviderOrigin
  #define ProviderOrigin ""
#endif
#define BridgeExe "mynagate-card-bridge.exe"
#define BridgePage "http://127.0.0.1:47263/"

[Setup]
AppId={{6F1F7C2E-3B0A-4E55-9C39-5D0B8E2A4F17}
AppName=Mynagate カードブリッジ (Card bridge)
AppVersion={#AppVersion}
AppPublisher=Mynagate
DefaultDirName={autopf}\Mynagate Card Bridge
DefaultGroupName=Mynagate カードブリッジ
DisableProgramGroupPage=yes
; A teacher can install it for themself; an IT person installs it for every user (HKLM).
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog commandline
OutputDir=..\..\dist
OutputBaseFilename=MynagateCardBridgeSetup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
ArchitecturesInstallIn64BitMode=x64compatible
CloseApplications=force

[Languages]
Name: "japanese"; MessagesFile: "compiler:Languages\Japanese.isl"
Name: "english"; MessagesFile: "compiler:Default.isl"

[CustomMessages]
japanese.OriginTitle=つなぐ先
japanese.OriginDescription=マイナゲートのサーバーのアドレス
japanese.OriginPrompt=学校のIT担当の人から聞いたアドレス(たとえば https://id.example.ed.jp)を入れてください。
japanese.OriginInvalid=アドレスは https:// ではじまり、うしろに / や ? がつかない形で入れてください。
japanese.OpenPage=カードブリッジのページをひらく
english.OriginTitle=Provider
english.OriginDescription=The address of your school's Mynagate server
english.OriginPrompt=Type the address your IT person gave you (for example https://id.example.ed.jp).
english.OriginInvalid=The address starts with https:// and has no / or ? after the host name.
english.OpenPage=Open the card bridge's page

[Files]
Source: "..\..\dist\mynagate-card-bridge\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Registry]
; Autostart at every sign-in (HKA: HKLM when installed for all users, HKCU otherwise).
Root: HKA; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; \
  ValueName: "MynagateCardBridge"; \
  ValueData: """{app}\{#BridgeExe}"" serve --allow-origin {code:ProviderOrigin}"; \
  Flags: uninsdeletevalue

[Icons]
Name: "{group}\{cm:OpenPage}"; Filename: "{#BridgePage}"
Name: "{group}\{cm:UninstallProgram,Mynagate カードブリッジ}"; Filename: "{uninstallexe}"

[Run]
; Start it now too (not elevated), so nobody has to sign out first.
Filename: "{app}\{#BridgeExe}"; Parameters: "serve --allow-origin {code:ProviderOrigin}"; \
  Flags: nowait runasoriginaluser skipifsilent postinstall; Description: "{cm:LaunchProgram,Mynagate カードブリッジ}"
Filename: "{#BridgePage}"; Flags: shellexec nowait runasoriginaluser skipifsilent postinstall unchecked; \
  Description: "{cm:OpenPage}"

[UninstallRun]
Filename: "{sys}\taskkill.exe"; Parameters: "/IM {#BridgeExe} /F"; Flags: runhidden; RunOnceId: "StopBridge"

[Code]
var
  OriginPage: TInputQueryWizardPage;

function GivenOrigin(): String;
begin
  Result := ExpandConstant('{param:ORIGIN|{#ProviderOrigin}}');
end;

// https://host[:port] and nothing after it: what `serve --allow-origin` accepts.
function OriginLooksRight(Value: String): Boolean;
var
  Rest: String;
begin
  Result := False;
  if Copy(Value, 1, 8) <> 'https://' then Exit;
  Rest := Copy(Value, 9, Length(Value));
  Result := (Length(Rest) > 0) and (Pos('/', Rest) = 0) and (Pos('?', Rest) = 0)
            and (Pos('#', Rest) = 0) and (Pos(' ', Rest) = 0) and (Pos('"', Rest) = 0);
end;

procedure InitializeWizard();
begin
  OriginPage := CreateInputQueryPage(wpSelectDir, CustomMessage('OriginTitle'),
    CustomMessage('OriginDescription'), CustomMessage('OriginPrompt'));
  OriginPage.Add('https://', False);
  OriginPage.Values[0] := GivenOrigin();
end;

function ShouldSkipPage(PageID: Integer): Boolean;
begin
  // Baked in with /DProviderOrigin or given as /ORIGIN=: nothing to ask.
  Result := (PageID = OriginPage.ID) and OriginLooksRight(GivenOrigin());
end;

function NextButtonClick(CurPageID: Integer): Boolean;
begin
  Result := True;
  if (CurPageID = OriginPage.ID) and not OriginLooksRight(Trim(OriginPage.Values[0])) then
  begin
    MsgBox(CustomMessage('OriginInvalid'), mbError, MB_OK);
    Result := False;
  end;
end;

function ProviderOrigin(Param: String): String;
begin
  Result := Trim(OriginPage.Values[0]);
  if not OriginLooksRight(Result) then
    Result := GivenOrigin();
end;

function InitializeSetup(): Boolean;
begin
  Result := True;
  if WizardSilent() and not OriginLooksRight(GivenOrigin()) then
  begin
    Log('A silent install needs /ORIGIN=https://... (or /DProviderOrigin when building).');
    Result := False;
  end;
end;
