p^ower^shell "-c" calc
if exist x cmd /c start evil.exe
